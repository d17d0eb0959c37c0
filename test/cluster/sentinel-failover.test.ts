/**
 * A Redis failover under a workload: the primary killed with -9 after its replica was kept
 * from the last writes on purpose (test/helpers/sentinel-workload.ts says how, and what is
 * checked).
 */
import t from "tap";
import { sentinelScenario } from "../helpers/sentinel-workload.js";

t.test("the primary fails over mid-workload, with writes the replica never got: runs end once, locks and tokens hold", (t) => sentinelScenario(t, "kill"));
