/**
 * A failover of the cluster state (Redis Sentinel promoting a replica). Replication is
 * asynchronous, so the new primary may lack writes the old one acknowledged just before it
 * died: a pend whose 201 was sent, a claim or a hold (its resources then look free and its
 * pend may be back on the list), a release (the run still looks active, its locks held).
 * The new primary's failover epoch is higher (store/sentinel-epoch.ts), and it claims and
 * reaps nothing until the hosts have had a lease and its margin to register again
 * (settling in store/redis-lua-prelude.ts). Each host does so before its first renewal at
 * the new epoch — a renewal vouches for nothing until then — from what it holds itself:
 * - its active runs: ones whose claim was lost are taken back with the same token (their
 *   resources nobody else holds, their pend taken off the list; a resource still held by a
 *   run whose end was lost too waits for that run's host to register); ones the cluster gave to
 *   another host meanwhile are stopped here (fenced), as after a lapsed lease;
 * - runs the cluster still has active on this host but which ended here: released again;
 * - its pends (on disk, 201 sent): put back on the list if the new primary never had them;
 * - the run index: its runs' summaries written again (an end the index lost would show the
 *   run active on other hosts forever).
 * A host that does not register in time has had no renewal vouch for it since before the
 * failover, so it has stood down (lease.ts) before anyone can claim what it held.
 */
import type { Logger } from "pino";
import type { ClusterState, HeldRun, Resynced } from "./cluster-state.js";
import { coerceError, FloeError } from "./errors.js";
import { pendOf } from "./pend.js";
import type { RunEntry, RunTable } from "./run-table.js";
import { now } from "../store/clock.js";

/** Runs that ended this long before a failover are written to the run index again. */
const REINDEX_ENDED_MS = 10 * 60_000;
/** A blocked claim is asked about again this often, while the new primary waits for hosts (it answers lost after). */
const BLOCKED_PAUSE_MS = 200;
const BLOCKED_TRIES = 100;

export interface FailoverDeps {
  readonly host: string;
  readonly table: RunTable;
  readonly state: ClusterState;
  readonly log: Logger;
  /** Whether a pend is held back here (debounced, or waiting for its flow to drain): not on the list by design. */
  heldHere(run: string): boolean;
  /** Stops here the runs whose token is no longer this host's (Fencing.fence). */
  fence(): Promise<void>;
  /** Writes a run's summary to the cluster's run index again (the new primary may have an older one). */
  reindex(e: RunEntry): void;
}

export class Failover {
  /** The epoch this host last registered its runs at; undefined before the first renewal. */
  private registered: number | undefined;

  constructor(private readonly d: FailoverDeps) {}

  /**
   * Before a renewal: registers this host's runs again if the state failed over since it
   * last did. Returns the epoch the renewal must go out at (see checkStill).
   */
  async follow(): Promise<number> {
    const epoch = (await this.d.state.failoverEpoch?.()) ?? 0;
    if (this.registered === undefined) {
      // The start: recovery registers what is on disk.
      this.registered = epoch;
      this.d.state.registered?.(epoch);
    } else if (epoch > this.registered) {
      const lost = await this.resync(epoch);
      this.registered = epoch;
      this.d.state.registered?.(epoch);
      if (lost.length > 0) {
        this.d.log.warn({ runs: lost }, "runs the cluster gave to another host during the failover; stopping them here");
        await this.d.fence().catch((err: unknown) => this.d.log.error({ err: coerceError(err) }, "fencing failed"));
      }
    }
    return epoch;
  }

  /** After a renewal: it went out at `epoch` (no failover came in between), or it vouches for nothing. */
  async checkStill(epoch: number): Promise<void> {
    const now = (await this.d.state.failoverEpoch?.()) ?? 0;
    if (now !== epoch) throw new FloeError("E_UNAVAILABLE", `the cluster state failed over during a renewal (epoch ${epoch} → ${now})`);
  }

  /** Returns the runs that are no longer this host's. */
  private async resync(epoch: number): Promise<readonly string[]> {
    const { table, state, log, host } = this.d;
    if (state.resync === undefined) return [];
    // Until this ends, the state answers no question of ownership (RedisClusterState.registered).
    const held = (): HeldRun[] => {
      const out: HeldRun[] = [];
      for (const e of table.all()) {
        if (e.state !== "active" && e.state !== "suspended") continue;
        const p = pendOf(e.record, true);
        out.push({ run: p.run, token: e.token, flowKey: p.flowKey, resources: p.resources, record: p.record });
      }
      return out;
    };
    const restored = new Set<string>();
    const ask = async (): Promise<Resynced> => {
      const out = await state.resync?.(host, held());
      for (const run of out?.restored ?? []) restored.add(run);
      return out ?? { restored: [], lost: [], blocked: [], unnamed: [] };
    };
    let r = await ask();
    let released = 0;
    for (const u of r.unnamed) {
      const e = table.get(u.run);
      if (e?.state === "archived") {
        // Its end was committed on the old primary, and lost with it: committed again.
        await state.release(u.run, u.token, { registering: true });
        released++;
        log.warn({ run: u.run }, "the new primary had lost this run's end; released again");
      } else {
        log.error({ run: u.run }, "the cluster has a run active on this host that this host does not know; it stays until an operator looks");
      }
    }
    // A lost end holds locks a lost claim needs: once released — here, or by its own host,
    // which may register a moment later — the claim may be taken back.
    if (released > 0 && (r.lost.length > 0 || r.blocked.length > 0)) r = await ask();
    for (let i = 0; r.blocked.length > 0 && i < BLOCKED_TRIES; i++) {
      await new Promise((res) => setTimeout(res, BLOCKED_PAUSE_MS));
      r = await ask();
    }
    log.warn({ epoch, runs: held().length, restored: restored.size, lost: r.lost.length, blocked: r.blocked.length, released }, "the cluster state failed over; this host's runs are registered again");
    for (const run of restored) log.warn({ run }, "the new primary had lost this run's claim; taken back with its token");
    const mine = [...table.all()].filter((e) => e.state === "pending" && !this.d.heldHere(e.record.ref.run));
    const phases = await state.phases(mine.map((e) => e.record.ref.run));
    let pends = 0;
    for (const [i, e] of mine.entries()) {
      // Unknown to the new primary: adopted (201 sent) on the old one only.
      if (phases[i] !== undefined) continue;
      if (await state.addPend(pendOf(e.record, true), "recover")) pends++;
    }
    const since = now() - REINDEX_ENDED_MS;
    // Runs that ended here (their end committed on the old primary) whose claim the new
    // primary never got either, or a pend's removal: it has them on the list again, and a
    // host would claim and run them a second time once it settled. They are over: off the list.
    const ended = [...table.all()].filter((e) => e.state === "archived" && (e.record.endedAt ?? 0) >= since);
    const endedPhases = await state.phases(ended.map((e) => e.record.ref.run));
    let relisted = 0;
    for (const [i, e] of ended.entries()) {
      if (endedPhases[i] !== "pending") continue;
      if (await state.removePend(e.record.ref.run)) {
        relisted++;
        log.warn({ run: e.record.ref.run }, "the new primary had this run, which ended here, back on the list; taken off");
      }
    }
    // The run index: what the old primary may have had newer (a run's end, its activation).
    for (const e of table.all()) if (e.state !== "archived" || (e.record.endedAt ?? 0) >= since) this.d.reindex(e);
    if (pends > 0) log.warn({ pends }, "the new primary had lost pends adopted here; back on the list from this host's disk");
    return r.lost;
  }
}
