/**
 * After a start (a restart, or a crash and a restart): pends go back on the pending list;
 * active runs take back their resources and continue — finished nodes stay finished,
 * interrupted tasks run again as a new attempt — or end `lost` when their flow says
 * `on-host-loss: fail`; runs that had ended but not yet moved are archived. Leftover
 * processes of interrupted tasks are killed first, so nothing runs twice at once.
 */
import type { Logger } from "pino";
import type { HostCommands } from "../agent/contract.js";
import type { RunDirState, RunFiles } from "../store/run-files.js";
import type { ClusterState } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import type { Executors } from "./executors.js";
import type { Finisher } from "./finisher.js";
import { NodeRuntime } from "./node-runtime.js";
import { pendOf } from "./pend.js";
import { parseRunRecord, withActivation, type RunRecord } from "./run-record.js";
import type { RunTable } from "./run-table.js";
import { readLogCounts, readRecords } from "./status-files.js";

export interface RecoveryDeps {
  readonly files: RunFiles;
  readonly table: RunTable;
  readonly state: ClusterState;
  readonly commands: HostCommands;
  readonly executors: Executors;
  readonly finisher: Finisher;
  readonly host: string;
  readonly clustered: boolean;
  readonly log: Logger;
  /** A pend held back from the shared list (a debounced trigger): taken over by its keeper, true if so. */
  held?(r: RunRecord): Promise<boolean>;
}

async function load(d: RecoveryDeps, state: RunDirState): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (const { loc, dir } of await d.files.list(state)) {
    try {
      const rec = parseRunRecord(await d.files.readRunJson(state, loc));
      if (rec === undefined) {
        d.log.error({ dir }, "run.json is missing or malformed; run skipped");
        continue;
      }
      out.push(rec);
    } catch (e) {
      d.log.error({ dir, err: coerceError(e) }, "run.json can not be read; run skipped");
    }
  }
  return out;
}

export async function recoverRuns(d: RecoveryDeps): Promise<void> {
  for (const r of await load(d, "archive")) d.table.restore(r);

  for (const r of await load(d, "pending")) {
    if ((await d.held?.(r)) === true) continue;
    if (!(await d.state.addPend(pendOf(r, d.clustered), "recover"))) {
      // Taken by another host, or ended, while this one was away: that host has the truth.
      d.log.info({ run: r.ref.run }, "pend moved on in the cluster while this host was down; dropping its copy");
      await d.files.remove("pending", r.ref);
      continue;
    }
    d.table.adopt(r);
  }

  for (const moved of await load(d, "active")) {
    const run = moved.ref.run;
    const records = await readRecords(d.files, "active", moved);
    // A run moved from pending/ kept its pend's run.json; its activation is in its journal.
    const r = withActivation(moved, records.run);
    const statuses = records.statuses;
    for (const [node, lines] of statuses) {
      for (const pgid of NodeRuntime.openGroups(lines)) {
        if (await d.commands.killTaskGroup(pgid, run)) d.log.warn({ run, node, pgid }, "killed a leftover task process group");
      }
    }
    const p = pendOf(r, false);
    const token = await d.state.hold({ run, host: d.host, flowKey: p.flowKey, resources: p.resources });
    if (token === undefined && r.result !== undefined && (await d.state.releasedBy(run))?.host === d.host) {
      await d.finisher.archiveCommitted(r);
      continue;
    }
    if (token === undefined) {
      // Its lease lapsed while this host was down and the cluster requeued or ended it;
      // this host writes nothing more for it (the leftover tasks were killed above).
      d.log.warn({ run }, "run was taken over by the cluster while this host was down; dropping its copy");
      await d.files.remove("active", r.ref);
      continue;
    }
    d.table.hold(r, token, "recovering");
    try {
      if (r.result !== undefined) {
        await d.finisher.finish(run, r.result, r.reason ?? "ended before the host stopped");
      } else if (r.flow.onHostLoss === "fail") {
        await d.finisher.finish(run, "lost", "the host stopped while the run was active (on-host-loss: fail)");
      } else {
        d.log.info({ run, flow: r.ref.flow }, "resuming run after restart");
        d.executors.resume(run, statuses, "restarted after the host stopped", await readLogCounts(d.files, "active", r, records));
      }
    } catch (err) {
      d.log.error({ run, err: coerceError(err) }, "could not recover run");
    }
  }
}
