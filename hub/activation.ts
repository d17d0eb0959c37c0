/**
 * Activation: a run this host claimed moves to `active/` with its journal and workspace,
 * its record fixed with the executing host, start time and workspace path, and its executor
 * starts it with trigger.good (DESIGN §4.4). A run adopted by another host comes with its
 * record in the claim. Nothing starts once the hub is stopping: the run then waits in
 * `active/` for the next start, which resumes it.
 */
import type { Logger } from "pino";
import type { RunFiles } from "../store/run-files.js";
import { RUN_KEY } from "../store/run-journal.js";
import type { ClusterState } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import type { Executors } from "./executors.js";
import type { Finisher } from "./finisher.js";
import type { NodeFiles } from "./node-files.js";
import { recordFromState } from "./pend.js";
import { activationOf, type RunRecord } from "./run-record.js";
import type { RunFolders } from "./run-folders.js";
import type { RunTable } from "./run-table.js";
import type { HostName } from "./types.js";
import { now } from "../store/clock.js";

export interface ActivationDeps {
  readonly host: string;
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly folders: RunFolders;
  readonly nodeFiles: NodeFiles;
  readonly state: ClusterState;
  readonly executors: Executors;
  readonly finisher: Finisher;
  readonly log: Logger;
  /** Whether the hub still starts work. */
  running(): boolean;
}

export class Activation {
  constructor(private readonly d: ActivationDeps) {}

  async activate(run: string, token: number, recordJson: string): Promise<void> {
    const { table, log } = this.d;
    const e = table.get(run);
    const local = e?.state === "pending";
    let base: RunRecord;
    if (e?.state === "pending") base = e.record;
    else {
      // Adopted by another host (cluster): the claim carries its record.
      const rec = recordFromState(recordJson);
      if (rec === undefined) {
        log.error({ run }, "a claimed pend has no valid record; releasing it");
        await this.d.state.release(run, token);
        return;
      }
      if (e !== undefined) {
        log.error({ run, state: e.state }, "claimed a run this host still had an old copy of; the claim wins");
        table.forget(run);
      }
      base = rec;
    }
    const { workspace: _old, ...fresh } = base;
    const record: RunRecord = { ...fresh, ref: { ...base.ref, execHost: this.d.host as HostName }, startedAt: now(), workspace: this.d.folders.workspaceOf(fresh) };
    table.hold(record, token, "activating");
    try {
      if (!local) await this.d.folders.snapshotFlow(record.flow);
      const journal = this.d.nodeFiles.journal(record);
      // A run of this host's pending/ keeps its pend's run.json: what its activation fixed
      // is the first record of its journal instead (read back by recovery.ts), made durable
      // with the first task's start. Lost in a crash before that, the run is what its pend
      // was, and starts over.
      if (local) journal.append(RUN_KEY, activationOf(record), { lazy: true });
      await this.d.files.openActive(record.ref, local ? undefined : record, [journal.log], async () => this.d.folders.prepareWorkspace(record), local);
    } catch (err) {
      log.error({ err: coerceError(err), run }, "activation failed");
      await this.d.finisher.finish(run, "bad", `could not activate: ${coerceError(err).message}`);
      return;
    }
    if (!this.d.running()) {
      log.info({ run }, "run activated while the host stops: it waits in active/ for the next start");
      await this.d.nodeFiles.close(run);
      return;
    }
    log.info({ run, flow: record.ref.flow }, "run activated");
    this.d.executors.start(run);
  }
}
