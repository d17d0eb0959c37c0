import t from "tap";
import type { TaskType } from "../agent/contract.js";
const x: TaskType = "exec";
t.equal(x, "exec");
