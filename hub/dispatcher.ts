/**
 * The dispatcher of one host. It runs passes one at a time — calls made during a pass
 * coalesce into one more — and each pass reads the shared state, decides by the rule of
 * dispatch.ts for every live host, records why pends wait, claims for this host what falls
 * to it, and wakes the hosts the rest falls to (ClusterState.wake), so that only they look.
 *
 * A pend its host could take at once is taken as it is adopted, in the same step
 * (ClusterState.addPendTaking: a "sync match", when a pass would decide so); took() activates it.
 *
 * What makes a host pass: its own changes (a pend it adopted, a run of its that ended, its
 * lease regained after a stand-down), a wake-up another host's pass sent it (waited for on
 * a blocking pop of its own), and a rare safety pass (cluster sync) for a lost wake-up.
 * Another host's news does not: a pend costs a pass of its adopting host and, if another
 * host takes it, one of that host — not one per host of the cluster (DESIGN §3).
 *
 * "herd" mode is the way before wake-ups, kept for the scale harness's side-by-side: the
 * host decides only for itself and every host passes on every event (cluster sync kicks it).
 *
 * It alone owns its flags; stop() lets no pass start and waits for the one in flight,
 * activations included.
 */
import type { Logger } from "pino";
import { WAKE_STANDS_MS, type Claimed, type ClusterState, type SnapshotHost } from "./cluster-state.js";
import { decide, parkingMayFree, type HostView } from "./dispatch.js";
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
  /** @defaultValue "wake" */
  readonly mode?: DispatchMode;
  /** How long one wait for a wake-up blocks before it is renewed. @defaultValue 5000 */
  readonly wakeWaitMs?: number;
}

export type DispatchMode = "wake" | "herd";

/** Up to this many hosts, each makes its own safety pass at the interval asked; past it, the cluster's hosts together make as many (kickIfQuiet). */
const SAFETY_SHARE = 10;

/** What a dispatcher did, for the scale harness and metrics. */
export interface DispatchStats {
  passes: number;
  /** Passes that read the pending list (not answered "unchanged" or "empty"). */
  snapshots: number;
  wakesSent: number;
  woken: number;
  claimed: number;
  /** Assignments a claim refused (another host, or a change, came first). */
  conflicts: number;
}

export class Dispatcher {
  private state: "closed" | "open" | "stopped" = "closed";
  private loop: Promise<void> | undefined;
  private again = false;
  /** The runs of the shared pending list at the last pass (cluster sync compares with it). */
  lastPends: ReadonlySet<string> | undefined;
  /** The state's version at the last pass that did all it could: no need to look again until it changes. */
  private seen: number | undefined;
  /**
   * …or until the earliest lease end of the hosts that pass gave runs to (on the state's
   * clock): if one of them died, its lease lapses without changing the version, and only a
   * new decision gives its runs to a live host.
   */
  private seenUntil: number | undefined;
  /** When the last pass started (performance.now(): a wall-clock step must not stop the safety pass), for the safety pass. */
  lastPassAt = 0;
  /** How many live hosts the last pass saw. */
  private liveHosts = 1;
  readonly stats: DispatchStats = { passes: 0, snapshots: 0, wakesSent: 0, woken: 0, claimed: 0, conflicts: 0 };
  readonly mode: DispatchMode;
  private readonly listening = new AbortController();
  /**
   * The view of a host with nothing running, per host record of the state's cached table:
   * most hosts in most passes, so a pass at 500 hosts does not make 500 objects.
   */
  private readonly idleViews = new WeakMap<SnapshotHost, HostView>();
  private listener: Promise<void> | undefined;
  /** Takes at adoption in flight (taking) and the activations of the runs they took (took). */
  private readonly activating = new Set<Promise<void>>();

  constructor(private readonly d: DispatcherDeps) {
    this.mode = d.mode ?? "wake";
  }

  /** From now on wake-ups run passes; one runs now. */
  open(): void {
    if (this.state !== "closed") return;
    this.state = "open";
    if (this.mode === "wake") this.listener = this.listen();
    this.kick();
  }

  /**
   * A pass unless one ran within `ms` — or, in a cluster of more than SAFETY_SHARE hosts, within
   * `ms` × hosts ÷ SAFETY_SHARE: looks again after a wake-up that may have been lost. Any
   * host's pass decides for every host and wakes those a lost wake-up left idle, so what
   * matters is how often *some* host looks; with every host looking every `ms`, a cluster of
   * 500 made 100 such passes a second — full ones under load, a sixth of all passes — for
   * what 2 a second do as well.
   */
  kickIfQuiet(ms: number): void {
    if (performance.now() - this.lastPassAt >= this.safetyIntervalMs(ms)) this.kick();
  }

  /** How long kickIfQuiet(ms) waits for, given the hosts the last pass saw. */
  safetyIntervalMs(ms: number): number {
    return ms * Math.max(1, this.liveHosts / SAFETY_SHARE);
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
    this.listening.abort();
    await this.listener;
    await this.loop;
    // A take in flight adds its run's activation as it ends: wait until none is left.
    while (this.activating.size > 0) await Promise.all(this.activating);
  }

  /**
   * Whether a pend this host adopts now may be taken by it in the same step
   * (ClusterState.addPendTaking): the dispatcher is open and the host may claim. Not in
   * "herd" mode, the way before, kept as it was for the scale harness's comparison.
   */
  mayTakeAtAdoption(): boolean {
    return this.state === "open" && this.mode === "wake" && this.d.mayClaim();
  }

  /**
   * A take at adoption in flight (addPendTaking): stop() waits for it and then for the
   * activation of the run it took (took) — a run taken in the state must be activated, or it
   * would hold its slot and resources with nobody running it.
   */
  taking<T>(add: Promise<T>): Promise<T> {
    const settled: Promise<void> = add.then(
      () => undefined,
      () => undefined,
    );
    this.activating.add(settled);
    void settled.then(() => this.activating.delete(settled));
    return add;
  }

  /**
   * A run this host took as it adopted it: activated as a pass's claim is (after a stop too:
   * the activation then leaves it in active/ for the next start), and waited for by stop().
   */
  took(c: Claimed): void {
    this.stats.claimed++;
    const a = this.d.activate(c.run, c.token, c.record).finally(() => this.activating.delete(a));
    this.activating.add(a);
  }

  /** Waits for wake-ups, one at a time, each a pass. */
  private async listen(): Promise<void> {
    const { state, host, log } = this.d;
    while (this.state === "open") {
      try {
        if (await state.waitWake(host, this.d.wakeWaitMs ?? 5000, this.listening.signal)) {
          this.stats.woken++;
          // Another host decided over a state this host may have seen already and found
          // nothing in (their clocks judged a lease differently): look again regardless.
          this.seen = undefined;
          this.seenUntil = undefined;
          this.kick();
        }
      } catch (e) {
        log.warn({ err: coerceError(e) }, "waiting for a wake-up failed; retrying");
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
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
    this.stats.passes++;
    this.lastPassAt = performance.now();
    const snap = await state.snapshot(this.seen, { skipIfEmpty: true, ...(this.seenUntil !== undefined ? { sameUntil: this.seenUntil } : {}) });
    if (snap === undefined) return; // nothing a decision depends on changed since the last pass
    this.seen = undefined;
    this.seenUntil = undefined;
    this.liveHosts = snap.liveHosts;
    if (snap.pends.length > 0) this.stats.snapshots++;
    this.lastPends = new Set(snap.pends.map((p) => p.run));
    const hosts = snap.hosts.map((h) => {
      const running = snap.runningByHost.get(h.name) ?? 0;
      if (running !== 0) return { name: h.name, tags: h.tags, freeSlots: h.slots - running };
      let v = this.idleViews.get(h);
      if (v === undefined) this.idleViews.set(h, (v = { name: h.name, tags: h.tags, freeSlots: h.slots }));
      return v;
    });
    const herd = this.mode === "herd";
    const d = decide({ pends: snap.pends, hosts, held: snap.held, activeByFlow: snap.activeByFlow, parkedForSlots: snap.parkedForSlots, ...(herd ? { forHost: host } : {}) });
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
    // One that was not parked lost its blocker since the snapshot (the resource was released,
    // a run of the flow ended): it may start now, and no other host looks — the adoption's or
    // a wake-up's stand holds their passes off it, and its release counted it attended. So
    // this host decides again, at once, rather than leave it for the stand to run out.
    const parked = mine.length > 0 ? await state.park(mine) : 0;
    if (parked < mine.length) this.again = true;
    // A resource this decision leaves free and kept for nobody, with pends parked on it: its
    // next in line comes back (the one its release brought back could not start), and so does
    // the oldest on a resource a pend parked just now held nothing back from; and the oldest
    // pend parked for a slot that a host with its tags keeps free or gives to a younger pend.
    // Decide again before claiming: what came back may be older than what this decision started.
    const heads = [...snap.parkedOn].filter((r) => !snap.held.has(r)).map((resource) => ({ resource, ...(d.firstInLine.has(resource) ? { before: d.firstInLine.get(resource) as string } : {}) }));
    const back = heads.length + d.slotHeads.length > 0 ? await state.unparkHeads([...heads, ...d.slotHeads]) : 0;
    if (back > 0 || parkingMayFree(mine)) {
      this.again = true;
      return;
    }
    // Runs the decision gives to other hosts: those hosts, and only they, look now — once per
    // pend (a host that passes before the woken one has claimed must not wake it again), or
    // again when this host was the one woken for it and gives it on.
    const others = d.assign.filter((a) => a.host !== host);
    // The wake-ups go out with this host's claim, not before it: Redis serves both in one
    // wake-up of its own, and the claim does not wait a round trip for them.
    const waking = others.length > 0 ? state.wake(others, WAKE_STANDS_MS, host) : Promise.resolve(0);
    const counted = others.length > 0 ? Math.min(...others.map((a) => snap.leaseEnds.get(a.host) ?? 0)) : undefined;
    const mineToStart = d.assign.filter((a) => a.host === host);
    // A host its lease does not vouch for takes no run (it would start its tasks unvouched).
    if (mineToStart.length === 0 || !this.d.mayClaim()) {
      this.stats.wakesSent += await waking;
      if (mineToStart.length === 0) {
        this.seen = snap.version;
        this.seenUntil = counted;
      }
      return;
    }
    const assignments = mineToStart.flatMap((a) => {
      const p = byRun.get(a.run);
      return p === undefined ? [] : [{ run: a.run, host: a.host, flowKey: p.flowKey, resources: p.resources, ...(p.concurrency !== undefined ? { concurrency: p.concurrency } : {}) }];
    });
    const [woke, claiming] = await Promise.allSettled([waking, state.claim(assignments)]);
    if (claiming.status === "rejected") throw claiming.reason;
    const claimed = claiming.value;
    this.stats.claimed += claimed.length;
    this.stats.conflicts += assignments.length - claimed.length;
    // Each activation waits on its own syncs; runs claimed together need not wait on each other's.
    await Promise.all(claimed.map((c) => this.d.activate(c.run, c.token, c.record)));
    // Wake-ups that failed (the state away): the pass fails after its claims are started.
    if (woke.status === "rejected") throw woke.reason;
    this.stats.wakesSent += woke.value;
    // Some were taken by another host meanwhile, or their resources went: decide again.
    if (claimed.length < assignments.length) this.again = true;
    else {
      this.seen = snap.version;
      this.seenUntil = counted;
    }
  }
}
