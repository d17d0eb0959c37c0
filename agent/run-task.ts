/** Dispatches a task to the code for its type. */
import type { TaskRequest, TaskResult, TaskRunner } from "./contract.js";
import { runExec } from "./exec.js";
import { runFetch } from "./fetch.js";
import { runGitCheckout } from "./git-checkout.js";
import { runGitMerge } from "./git-merge.js";
import { runTimer } from "./timer.js";
import { assertNever } from "../flows/errors.js";

export const runTask: TaskRunner = async (req: TaskRequest): Promise<TaskResult> => {
  switch (req.type) {
    case "exec":
      return runExec(req);
    case "git-checkout":
      return runGitCheckout(req);
    case "git-merge":
      return runGitMerge(req);
    case "fetch":
      return runFetch(req);
    case "timer":
      return runTimer(req);
    default:
      return assertNever(req.type);
  }
};
