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
 *   resources nobody else holds, their pend taken off the list); ones the cluster gave to
 *   another host meanwhile are stopped here (fenced), as after a lapsed lease;
 * - runs the cluster still has active on this host but which ended here: released again;
 * - its pends (on disk, 201 sent): put back on the list if the new primary never had them.
 * A host that does not register in time has had no renewal vouch for it since before the
 * failover, so it has stood down (lease.ts) before anyone can claim what it held.
 */
import type { Logger } from "pino";
import type { ClusterState, HeldRun } from "./cluster-state.js";
import { coerceError, FloeError } from "./errors.js";
import { pendOf } from "./pend.js";
import type { RunTable } from "./run-table.js";

export interface FailoverDeps {
  readonly host: string;
  readonly table: RunTable;
  readonly state: ClusterState;
  readonly log: Logger;
  /** Whether a pend is held back here (debounced, or waiting for its flow to drain): not on the list by design. */
  heldHere(run: string): boolean;
  /** Stops here the runs whose token is no longer this host's (Fencing.fence). */
  fence(): Promise<void>;
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
    } else if (epoch > this.registered) {
      await this.resync(epoch);
      this.registered = epoch;
    }
    return epoch;
  }

  /** After a renewal: it went out at `epoch` (no failover came in between), or it vouches for nothing. */
  async checkStill(epoch: number): Promise<void> {
    const now = (await this.d.state.failoverEpoch?.()) ?? 0;
    if (now !== epoch) throw new FloeError("E_UNAVAILABLE", `the cluster state failed over during a renewal (epoch ${epoch} → ${now})`);
  }

  private async resync(epoch: number): Promise<void> {
    const { table, state, log, host } = this.d;
    if (state.resync === undefined) return;
    const held: HeldRun[] = [];
    for (const e of table.all()) {
      if (e.state !== "active" && e.state !== "suspended") continue;
      const p = pendOf(e.record, true);
      held.push({ run: p.run, token: e.token, flowKey: p.flowKey, resources: p.resources, record: p.record });
    }
    let r = await state.resync(host, held);
    let released = 0;
    for (const u of r.unnamed) {
      const e = table.get(u.run);
      if (e?.state === "archived") {
        // Its end was committed on the old primary, and lost with it: committed again.
        await state.release(u.run, u.token);
        released++;
        log.warn({ run: u.run }, "the new primary had lost this run's end; released again");
      } else {
        log.error({ run: u.run }, "the cluster has a run active on this host that this host does not know; it stays until an operator looks");
      }
    }
    // A lost end held locks a lost claim needs: once released, the claim may be taken back.
    if (released > 0 && r.lost.length > 0) r = await state.resync(host, held);
    log.warn({ epoch, runs: held.length, restored: r.restored.length, lost: r.lost.length, released }, "the cluster state failed over; this host's runs are registered again");
    for (const run of r.restored) log.warn({ run }, "the new primary had lost this run's claim; taken back with its token");
    let pends = 0;
    for (const e of [...table.all()]) {
      if (e.state !== "pending" || this.d.heldHere(e.record.ref.run)) continue;
      if (await state.addPend(pendOf(e.record, true), "recover")) pends++;
    }
    if (pends > 0) log.info({ pends }, "this host's pends checked on the new primary (any it had lost are back on the list)");
    if (r.lost.length > 0) {
      log.warn({ runs: r.lost }, "runs the cluster gave to another host during the failover; stopping them here");
      await this.d.fence().catch((err: unknown) => log.error({ err: coerceError(err) }, "fencing failed"));
    }
  }
}
