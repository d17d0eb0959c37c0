/**
 * After a start (a restart, or a crash and a restart): pends go back on the pending list;
 * active runs take back their resources and continue — finished nodes stay finished,
 * interrupted tasks run again as a new attempt — or end `lost` when their flow says
 * `on-host-loss: fail`; runs that had ended but not yet moved are archived. Leftover
 * processes of interrupted tasks are killed first, so nothing runs twice at once.
 */
import type { Logger } from "pino";
import { killOrphanGroup } from "../agent/orphans.js";
import type { RunDirState, RunFiles } from "../store/run-files.js";
import type { ClusterState, PendRecord } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import { NodeRuntime } from "./node-runtime.js";
import { parseRunRecord, type RunRecord, type StatusLine } from "./run-record.js";
import type { RunEntry, RunIndex } from "./run-index.js";
import type { RunResult } from "./types.js";

export interface RecoveryDeps {
  readonly files: RunFiles;
  readonly index: RunIndex;
  readonly state: ClusterState;
  readonly host: string;
  readonly log: Logger;
  pendOf(r: RunRecord): PendRecord;
  resume(e: RunEntry, statuses: ReadonlyMap<string, readonly StatusLine[]>): Promise<void>;
  finish(e: RunEntry, result: RunResult, reason: string): Promise<void>;
  readStatus(state: RunDirState, r: RunRecord, node: string): Promise<StatusLine[]>;
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
  for (const r of await load(d, "archive")) d.index.set({ record: r, state: "archived" });

  for (const r of await load(d, "pending")) {
    if (!(await d.state.addPend(d.pendOf(r), "recover"))) {
      // Taken by another host, or ended, while this one was away: that host has the truth.
      d.log.info({ run: r.ref.run }, "pend moved on in the cluster while this host was down; dropping its copy");
      await d.files.remove("pending", r.ref);
      continue;
    }
    d.index.set({ record: r, state: "pending" });
  }

  for (const r of await load(d, "active")) {
    const e: RunEntry = { record: r, state: "active" };
    const statuses = new Map<string, StatusLine[]>();
    for (const n of [...r.flow.triggers, ...r.flow.tasks]) statuses.set(n.id, await d.readStatus("active", r, n.id));
    for (const [node, lines] of statuses) {
      for (const pgid of NodeRuntime.openGroups(lines)) {
        if (await killOrphanGroup(pgid, r.ref.run)) d.log.warn({ run: r.ref.run, node, pgid }, "killed a leftover task process group");
      }
    }
    const p = d.pendOf(r);
    const token = await d.state.hold({ run: r.ref.run, host: d.host, flowKey: p.flowKey, resources: p.resources });
    if (token === undefined) {
      // Its lease lapsed while this host was down and the cluster requeued or ended it;
      // this host writes nothing more for it (the leftover tasks were killed above).
      d.log.warn({ run: r.ref.run }, "run was taken over by the cluster while this host was down; dropping its copy");
      await d.files.remove("active", r.ref);
      continue;
    }
    e.token = token;
    d.index.set(e);
    try {
      if (r.result !== undefined) {
        await d.finish(e, r.result, r.reason ?? "ended before the host stopped");
      } else if (r.flow.onHostLoss === "fail") {
        await d.finish(e, "lost", "the host stopped while the run was active (on-host-loss: fail)");
      } else {
        d.log.info({ run: r.ref.run, flow: r.ref.flow }, "resuming run after restart");
        await d.resume(e, statuses);
      }
    } catch (err) {
      d.log.error({ run: r.ref.run, err: coerceError(err) }, "could not recover run");
    }
  }
}
