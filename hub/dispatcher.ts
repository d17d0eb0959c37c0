/**
 * The dispatcher of one host: woken by anything that may let a pend start (a new pend, a
 * run's end, another host's news, cluster sync), it runs passes one at a time — calls made
 * during a pass coalesce into one more — and each pass reads the shared state, decides by
 * the rule of dispatch.ts, records why pends wait, claims for this host what it may start
 * and activates it. It alone owns its flags; stop() lets no pass start and waits for the
 * one in flight, activations included.
 */
import type { Logger } from "pino";
import type { ClusterState } from "./cluster-state.js";
import { decide, parkingMayFree } from "./dispatch.js";
import { coerceError } from "./errors.js";
import type { Publisher } from "./publisher.js";
import type { RunTable } from "./run-table.js";

export interface DispatcherDeps {
  readonly state: ClusterState;
  readonly table: RunTable;
  readonly host: string;
  readonly publisher: Publisher;
  readonly log: Logger;
  /** Whether this host may take runs now (cluster: its lease vouches for it). */
  mayClaim(): boolean;
  /** Starts a run this host claimed. */
  activate(run: string, token: number, recordJson: string): Promise<void>;
}

export class Dispatcher {
  private state: "closed" | "open" | "stopped" = "closed";
  private loop: Promise<void> | undefined;
  private again = false;
  /** The runs of the shared pending list at the last pass (cluster sync compares with it). */
  lastPends: ReadonlySet<string> | undefined;
  /** The state's version at the last pass that did all it could: no need to look again until it changes. */
  private seen: number | undefined;

  constructor(private readonly d: DispatcherDeps) {}

  /** From now on wake-ups run passes; one runs now. */
  open(): void {
    if (this.state !== "closed") return;
    this.state = "open";
    this.kick();
  }

  /** A pass soon; calls made while one runs coalesce into one more. */
  kick(): void {
    if (this.state !== "open") return;
    if (this.loop !== undefined) {
      this.again = true;
      return;
    }
    this.loop = new Promise<void>((r) => setImmediate(r))
      .then(() => this.passes())
      .finally(() => (this.loop = undefined));
  }

  /** No pass starts after this; resolves when the one in flight (and its activations) is done. */
  async stop(): Promise<void> {
    this.state = "stopped";
    await this.loop;
  }

  private async passes(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && this.state === "open");
    } catch (e) {
      this.d.log.error({ err: coerceError(e) }, "dispatch failed; retrying");
      setTimeout(() => this.kick(), 1000).unref();
    }
  }

  private async pass(): Promise<void> {
    const { state, table, host } = this.d;
    const snap = await state.snapshot(this.seen, { skipIfEmpty: true });
    if (snap === undefined) return; // nothing a decision depends on changed since the last pass
    this.seen = undefined;
    this.lastPends = new Set(snap.pends.map((p) => p.run));
    const hosts = snap.hosts.map((h) => ({ name: h.name, tags: h.tags, freeSlots: h.slots - (snap.runningByHost.get(h.name) ?? 0) }));
    const d = decide({ pends: snap.pends, hosts, held: snap.held, activeByFlow: snap.activeByFlow, forHost: host });
    for (const [run, why] of d.waiting) {
      const e = table.get(run);
      if (e?.state === "pending" && e.waiting !== why) this.d.publisher.run(table.wait(run, why));
    }
    // Pends that only a change of their blocker can start leave the scanned list until it
    // changes (dispatch.ts decides which): a backlog nobody can take costs a pass nothing.
    const byRun = new Map(snap.pends.map((p) => [p.run, p]));
    // Only the pends this host adopted: their reasons are published here first (a pend parked
    // by another host before its own host's pass would never get its reason).
    const mine = d.park.flatMap(({ run, on }) => {
      const p = byRun.get(run);
      return p !== undefined && p.adoptedBy === host ? [{ ...p, on }] : [];
    });
    if (mine.length > 0) await state.park(mine);
    // A resource this decision leaves free and kept for nobody, with pends parked on it: its
    // next in line comes back (the one its release brought back could not start), and so does
    // the oldest on a resource a pend parked just now held nothing back from. Decide again
    // before claiming: what came back may be older than what this decision started.
    const free = [...snap.parkedOn].filter((r) => !snap.held.has(r)).map((resource) => ({ resource, ...(d.firstInLine.has(resource) ? { before: d.firstInLine.get(resource) as string } : {}) }));
    const back = free.length > 0 ? await state.unparkHeads(free) : 0;
    if (back > 0 || parkingMayFree(mine)) {
      this.again = true;
      return;
    }
    if (d.assign.length === 0) {
      this.seen = snap.version;
      return;
    }
    // A host its lease does not vouch for takes no run (it would start its tasks unvouched).
    if (!this.d.mayClaim()) return;
    const assignments = d.assign.flatMap((a) => {
      const p = byRun.get(a.run);
      return p === undefined ? [] : [{ run: a.run, host: a.host, flowKey: p.flowKey, resources: p.resources, ...(p.concurrency !== undefined ? { concurrency: p.concurrency } : {}) }];
    });
    const claimed = await state.claim(assignments);
    // Each activation waits on its own syncs; runs claimed together need not wait on each other's.
    await Promise.all(claimed.map((c) => this.d.activate(c.run, c.token, c.record)));
    // Some were taken by another host meanwhile, or their resources went: decide again.
    if (claimed.length < assignments.length) this.again = true;
    else this.seen = snap.version;
  }
}
