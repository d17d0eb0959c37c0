/**
 * Cluster mode only: what keeps this host in step with the others. It answers other hosts'
 * requests (data, cancel), forgets its own pends they took, and every sync period: writes
 * the run-index backlog, reaps hosts whose lease lapsed (requeuing or ending their runs),
 * drops local pends that moved on while events were lost, and looks at the shared list
 * when it has not for a while.
 */
import type { Logger } from "pino";
import type { RunEndListener } from "./notifier.js";
import type { RunFiles } from "../store/run-files.js";
import type { Bus } from "../store/bus.js";
import type { ClusterLink } from "./cluster-link.js";
import type { ClusterState } from "./cluster-state.js";
import { parseCancelRequest, parseDataRequest, type Commands } from "./commands.js";
import type { Dispatcher } from "./dispatcher.js";
import { coerceError } from "./errors.js";
import type { IndexMirror } from "./index-mirror.js";
import type { Lease } from "./lease.js";
import { parsePauseRequest, pausedInCluster, type Pauses } from "./pause.js";
import { pendOf, recordFromState } from "./pend.js";
import type { Publisher } from "./publisher.js";
import type { Queries } from "./queries.js";
import type { RunRecord } from "./run-record.js";
import { summarize, type PendingRun, type RunTable } from "./run-table.js";
import type { HostName, RunEvent } from "./types.js";
import { now } from "../store/clock.js";

/** A local pend missing from the shared list is looked at again after 5 s, then less often, up to every 5 minutes. */
const FIRST_MISSING_CHECK_MS = 5000;
const MAX_MISSING_CHECK_MS = 300_000;
/** A host that has not passed for this long looks anyway (see sync()). */
const SAFETY_PASS_MS = 5000;

export interface ClusterSyncDeps {
  readonly host: string;
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly state: ClusterState;
  readonly bus: Bus<RunEvent>;
  readonly link: ClusterLink;
  readonly mirror: IndexMirror;
  readonly dispatcher: Dispatcher;
  readonly publisher: Publisher;
  readonly queries: Queries;
  readonly commands: Commands;
  readonly pauses: Pauses;
  readonly lease: Lease;
  readonly log: Logger;
  /** Stops here what the cluster gave to another host (a reap that took this host's own runs). */
  readonly fence: () => Promise<void>;
  /** Told of a run this host ends lost (notifications). */
  readonly notifier?: RunEndListener;
  /** A run reaped as lost: its child runs still running are cancelled (child-runs.ts). */
  parentEnded?(r: RunRecord): Promise<void>;
}

export class ClusterSync {
  private stopTicks: (() => void) | undefined;
  private running = false;
  private syncing = false;
  private unsubscribe: (() => void) | undefined;
  /** When a sync last failed (the host's start counts). */
  private troubleAt = performance.now();
  /**
   * Local pends missing from the shared list: when to look at them next. A parked pend (no
   * live host has its tags) is missing for as long as it waits: it is looked at less and
   * less often, up to once every five minutes, not at every sync.
   */
  private readonly missingPends = new Map<string, { at: number; delay: number }>();
  /** When missing pends' phases were last read (Date.now()). */
  private missingReadAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly d: ClusterSyncDeps) {}

  /** Answers other hosts, follows their news, and syncs every period until stop(). */
  start(): void {
    const { link, commands, bus, table, files, host, dispatcher } = this.d;
    link.serve("data", async (p) => {
      const q = parseDataRequest(p);
      return commands.postData(q.run, q.node, q.values, q.reject, q.by);
    });
    link.serve("cancel", async (p) => {
      const q = parseCancelRequest(p);
      return commands.cancel(q.run, q.by);
    });
    link.serve("pause", async (p) => {
      const q = parsePauseRequest(p);
      return this.d.pauses.setHere(q.run, q.by, q.pause);
    });
    this.unsubscribe = bus.subscribe((ev) => {
      if (ev.type !== "run") return;
      // The way before wake-ups ("herd"): another host adopted a pend or freed a slot or
      // resource, so every host looks. Now the pass of the host that made the change wakes
      // the hosts its decision gives runs to, and no other (hub/dispatcher.ts).
      if (dispatcher.mode === "herd" && ev.summary.ref.execHost !== host && ev.summary.state !== "active") dispatcher.kick();
      if (ev.summary.state === "pending") return;
      const e = table.get(ev.summary.ref.run);
      if (e?.state !== "pending" || ev.summary.ref.execHost === host) return;
      // Our pend was activated (or ended) elsewhere: its files here are no longer the truth.
      table.forget(e.record.ref.run);
      void files.remove("pending", e.record.ref).catch(() => undefined);
    });
    this.running = true;
    // Every renewal period, with the renewal itself (Lease.onTick).
    this.stopTicks = this.d.lease.onTick(() => this.tick());
  }

  stop(): void {
    this.running = false;
    this.stopTicks?.();
    this.unsubscribe?.();
  }

  /** A tick of the lease's renewal: a sync, unless the last one is still going. */
  private tick(): void {
    if (!this.running || this.syncing) return;
    this.syncing = true;
    void this.sync().finally(() => (this.syncing = false));
  }

  private async sync(): Promise<void> {
    const { lease } = this.d;
    try {
      await this.d.mirror.flush();
      // After an outage of the state (a Redis restart), every host's lease looks lapsed
      // until it renews: reap only once all live hosts have had a full lease to do so.
      const trouble = Math.max(this.troubleAt, lease.troubleAt);
      if (lease.vouched && performance.now() - trouble > lease.ms + lease.marginMs + lease.renewEveryMs) await this.reap();
      await this.dropMovedPends();
      // A wake-up can be lost with a connection (Redis restarting, a woken host dying before
      // it looked): look at the shared list anyway, now and then — a host that passed a
      // moment ago need not (a pass whose state did not change costs one small script).
      if (this.d.dispatcher.mode === "herd") this.d.dispatcher.kick();
      else this.d.dispatcher.kickIfQuiet(SAFETY_PASS_MS);
    } catch (e) {
      this.troubleAt = performance.now();
      this.d.log.warn({ err: coerceError(e) }, "cluster sync failed; retrying");
    }
  }

  /** Runs of hosts whose lease lapsed: requeued as a new attempt, or ended lost. */
  private async reap(): Promise<void> {
    const { state, publisher, log } = this.d;
    const reaped = await state.reapDead({ ifDue: true });
    // This host's own runs among them (its lease lapsed, its reap's reply came late): they
    // are not its any more — stop them here before anything else starts for them.
    if (reaped.some((lost) => lost.host === this.d.host)) await this.d.fence();
    for (const lost of reaped) {
      const record = recordFromState(await state.getRecord(lost.run));
      if (record === undefined) {
        log.error({ run: lost.run, host: lost.host }, "a lost run has no record; it can not be recovered");
        continue;
      }
      if (record.flow.onHostLoss === "fail") {
        const ended: RunRecord = { ...record, result: "lost", reason: `host ${lost.host} was lost while the run was active (on-host-loss: fail)`, endedAt: now() };
        // The one host that reaped it tells the flow's receivers (reapDead gives a lost run to one host).
        await this.d.notifier?.runEnded(ended).catch((err: unknown) => log.error({ err: coerceError(err), run: lost.run }, "could not record the run's notifications"));
        publisher.summary(summarize({ state: "archived", record: ended }));
        log.warn({ run: lost.run, host: lost.host }, "run lost with its host");
        // Its child runs have no parent to wait for them any more.
        await this.d.parentEnded?.(ended).catch((err: unknown) => log.warn({ err: coerceError(err), run: lost.run }, "could not cancel the children of a lost run"));
        continue;
      }
      // A paused run stays paused in its new attempt; a re-run keeps what it replays.
      const paused = await pausedInCluster(state, lost.run);
      const again: RunRecord = { v: 1, ref: { flow: record.ref.flow, ver: record.ref.ver, run: record.ref.run, adoptedBy: this.d.host as HostName }, flow: record.flow, trigger: record.trigger, adoptedAt: record.adoptedAt, attempt: record.attempt + 1, ...(paused !== undefined ? { paused } : {}), ...(record.rerunOf !== undefined ? { rerunOf: record.rerunOf } : {}), ...(record.replay !== undefined ? { replay: record.replay } : {}), ...(record.parent !== undefined ? { parent: record.parent } : {}), ...(record.inputs !== undefined ? { inputs: record.inputs } : {}) };
      // The pend carries the new attempt's record: addPend keeps it as the run's record.
      if (!(await state.addPend(pendOf(again, true), "requeue"))) continue;
      log.warn({ run: lost.run, host: lost.host, attempt: again.attempt }, "run requeued after its host was lost");
      publisher.summary(summarize({ state: "pending", record: again }));
      this.d.dispatcher.kick();
    }
  }

  /**
   * A local pend activated or ended by another host is dropped when that host's event
   * arrives; events sent while NATS was away never arrive. So: a local pend missing from
   * the shared list at two syncs in a row, which the run index shows past pending, is
   * dropped here too (its files would otherwise say "pending" forever).
   */
  private async dropMovedPends(): Promise<void> {
    const { table, files, queries, log, state } = this.d;
    const listed = this.d.dispatcher.lastPends;
    if (listed === undefined) return;
    const now = Date.now();
    const due: PendingRun[] = [];
    for (const e of table.all()) {
      const run = e.record.ref.run;
      if (e.state !== "pending" || listed.has(run)) {
        this.missingPends.delete(run);
        continue;
      }
      const seen = this.missingPends.get(run);
      if (seen === undefined) this.missingPends.set(run, { at: now, delay: 0 });
      else if (now >= seen.at) due.push(e);
    }
    for (const run of this.missingPends.keys()) if (table.get(run)?.state !== "pending") this.missingPends.delete(run);
    // Their phases in one read, at most every FIRST_MISSING_CHECK_MS: a backlog of parked pends
    // (missing from the list for as long as they wait) falls due a few at a time, and a read at
    // every sync for them was most of what an idle host asked of Redis.
    if (due.length === 0 || now < this.missingReadAt + FIRST_MISSING_CHECK_MS) return;
    this.missingReadAt = now;
    // A pend still pending in the cluster (parked) is left alone.
    for (let i = 0; i < due.length; i += 500) {
      const batch = due.slice(i, i + 500);
      const phases = await state.phases(batch.map((e) => e.record.ref.run));
      for (const [j, e] of batch.entries()) {
        const run = e.record.ref.run;
        const seen = this.missingPends.get(run);
        if (phases[j] === "pending" || phases[j] === undefined) {
          const delay = Math.min(MAX_MISSING_CHECK_MS, Math.max(FIRST_MISSING_CHECK_MS, (seen?.delay ?? 0) * 2));
          this.missingPends.set(run, { at: now + delay, delay });
          continue;
        }
        // Moved on: the run index says where (an event for it may still be on its way).
        const sum = await queries.indexedSummary(run);
        if (sum === undefined || sum.state === "pending") continue;
        this.missingPends.delete(run);
        if (table.get(run) !== e) continue;
        log.info({ run }, "run moved on elsewhere while events were lost; dropping the local pending copy");
        table.forget(run);
        await files.remove("pending", e.record.ref).catch(() => undefined);
      }
    }
  }
}
