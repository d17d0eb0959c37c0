/** What a run's executor (run-executor.ts) needs from the rest of its host: wired in executors.ts. */
import type { Logger } from "pino";
import type { TaskRunner } from "../agent/contract.js";
import type { AppendLog } from "../store/append-log.js";
import type { ChildRuns } from "./child-runs.js";
import type { TaskSecrets } from "./secrets.js";
import type { TaskArtifacts } from "./task-artifacts.js";
import type { RunJournal } from "../store/run-journal.js";
import type { RunEvent, RunResult } from "./types.js";

export interface ExecutorDeps {
  readonly runTask: TaskRunner;
  /** Asked right before a task's process starts; false: the run is no longer this host's. */
  mayStartTask?(signal: AbortSignal): Promise<boolean>;
  readonly log: Logger;
  /** The run's journal: the status records of all its nodes. */
  readonly journal: RunJournal;
  /** Opens the append-only output file of a node (made by its first line). */
  openLog(node: string): AppendLog;
  publish(ev: RunEvent): void;
  /** Called once, after the run ended and every task of it stopped. */
  onEnd(result: RunResult, reason: string): void;
  readonly workspace: string;
  readonly cacheDir: string;
  readonly gitKey?: string;
  readonly killGraceMs?: number;
  /** The host's secrets: given to the tasks of flows that name them, masked in every text the run produces. */
  readonly secrets: TaskSecrets;
  /** Each task's `$FLOE_ARTIFACTS` and `$FLOE_INPUTS`, and the keeping of what it left there. */
  readonly artifacts: TaskArtifacts;
  /** Starts and follows child runs (`type: flow` tasks). @defaultValue none: such a task fails */
  readonly children?: ChildRuns;
}
