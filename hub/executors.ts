/**
 * Puts an executor on a run this host holds: a fresh start at activation, or a resumption
 * from the run's journal (after a restart, or after a stand-down). The executor is
 * wired to the rest of the hub here: the task gate, the node files, publishing, and the
 * finisher it hands the run's end to.
 */
import type { Logger } from "pino";
import type { TaskRunner } from "../agent/contract.js";
import type { Config } from "../flows/model.js";
import type { Finisher } from "./finisher.js";
import type { NodeFiles } from "./node-files.js";
import type { Publisher } from "./publisher.js";
import type { StatusLine } from "./run-record.js";
import { RunExecutor } from "./run-executor.js";
import type { RunFolders } from "./run-folders.js";
import type { RunTable } from "./run-table.js";
import type { ChildRuns } from "./child-runs.js";
import type { TaskSecrets } from "./secrets.js";
import type { TaskArtifacts } from "./task-artifacts.js";

export interface ExecutorsDeps {
  readonly runTask: TaskRunner;
  readonly table: RunTable;
  readonly folders: RunFolders;
  readonly nodeFiles: NodeFiles;
  readonly publisher: Publisher;
  readonly finisher: Finisher;
  readonly log: Logger;
  readonly config: () => Config;
  readonly killGraceMs?: number;
  readonly secrets: TaskSecrets;
  readonly artifacts: TaskArtifacts;
  readonly children?: ChildRuns;
  /** Whether executors may start now (not once the hub stops: the run waits for the next start). */
  mayRun(): boolean;
  /** Asked right before a task's process starts (fencing.ts). */
  mayStartTask(run: string, signal: AbortSignal): Promise<boolean>;
}

export class Executors {
  constructor(private readonly d: ExecutorsDeps) {}

  /** A run just activated: it starts with trigger.good. */
  start(run: string): void {
    if (!this.d.mayRun()) return;
    const ex = this.attach(run);
    this.publish(run);
    ex.start();
  }

  /** A held run goes on from its nodes' status lines; interrupted tasks run again (`note` says why). */
  resume(run: string, statuses: ReadonlyMap<string, readonly StatusLine[]>, note: string, logLines: ReadonlyMap<string, number>): void {
    if (!this.d.mayRun()) return;
    const e = this.d.table.get(run);
    if (e !== undefined) this.d.folders.prepareWorkspace(e.record);
    const ex = this.attach(run);
    this.publish(run);
    ex.resume(statuses, note, logLines);
  }

  private publish(run: string): void {
    const e = this.d.table.get(run);
    if (e !== undefined) this.d.publisher.run(e);
  }

  private attach(run: string): RunExecutor {
    const e = this.d.table.get(run);
    if (e?.state !== "suspended") throw new Error(`run ${run} is not held here (${e?.state ?? "unknown"}); no executor for it`);
    const r = e.record;
    const gitKey = this.d.config().common.gitKey;
    const ex = new RunExecutor(r, {
      runTask: this.d.runTask,
      mayStartTask: (signal) => this.d.mayStartTask(run, signal),
      log: this.d.log.child({ run, flow: r.ref.flow }),
      journal: this.d.nodeFiles.journal(r),
      openLog: (node) => this.d.nodeFiles.log(r, node),
      publish: (ev) => this.d.publisher.event(ev),
      onEnd: (result, reason) => this.d.finisher.ended(run, result, reason),
      workspace: this.d.folders.workspaceOf(r),
      cacheDir: this.d.folders.cacheDir,
      secrets: this.d.secrets,
      artifacts: this.d.artifacts,
      ...(this.d.children !== undefined ? { children: this.d.children } : {}),
      ...(gitKey !== undefined ? { gitKey } : {}),
      ...(this.d.killGraceMs !== undefined ? { killGraceMs: this.d.killGraceMs } : {}),
    });
    this.d.table.run(run, ex);
    return ex;
  }
}
