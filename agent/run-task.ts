/** Dispatches a task to the code for its type. (Interim: git, fetch and timer arrive with their modules.) */
import type { TaskRequest, TaskResult, TaskRunner } from "./contract.js";
import { runExec } from "./exec.js";

export const runTask: TaskRunner = async (req: TaskRequest): Promise<TaskResult> => {
  switch (req.type) {
    case "exec":
      return runExec(req);
    default:
      return { status: 1, error: `${req.type} tasks are not available yet`, outputs: {} };
  }
};
