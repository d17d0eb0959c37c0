/** The in-process ClusterState of an embedded host: the same contract as Redis, in memory. */
import { emptySnapshot, WAKE_STANDS_MS, type SnapshotOptions } from "./cluster-state.js";
import { LocalRunIndex } from "./local-run-index.js";
import type { ActiveEntry, ParkedHead, ParkReason, ParkRequest, Assignment, Claimed, ClusterState, HostRecord, IndexedRun, IndexQuery, IndexWrite, PendHow, PendRecord, Released, RunPhase, Snapshot } from "./cluster-state.js";

export class LocalClusterState implements ClusterState {
  private readonly hostMap = new Map<string, { host: HostRecord; until: number; reapAt: number }>();
  private readonly pends: PendRecord[] = [];
  private readonly held = new Map<string, string>();
  private readonly active = new Map<string, ActiveEntry>();
  private readonly phaseOf = new Map<string, RunPhase>();
  /** Who released recent runs (the newest 10,000), as Redis keeps it for an hour. */
  private readonly releasedByOf = new Map<string, { host: string; token: number }>();
  private token = 0;
  /** The run index's part of the contract. */
  private readonly index = new LocalRunIndex();
  private readonly records = new Map<string, string>();
  private readonly ticks = new Map<string, number>();
  private readonly values = new Map<string, string>();
  /** Parked pends and what they wait for: kept in their place in `pends`, left out of snapshots. */
  private readonly parked = new Map<string, ParkReason>();
  /** Concurrency limits of flows with pends parked on them. */
  private readonly limits = new Map<string, number>();
  private version = 0;
  /** Hosts woken while not waiting (their next wait returns at once), and those waiting. */
  private readonly woken = new Set<string>();
  private readonly waiters = new Map<string, (woke: boolean) => void>();
  /** run → the host last woken to take it, and when (see ClusterState.wake). */
  private readonly wokeFor = new Map<string, { readonly at: number; readonly host: string }>();

  constructor(private readonly now: () => number = Date.now) {}

  async heartbeat(h: HostRecord, leaseMs: number, marginMs = 0): Promise<"new" | "renewed" | "expired"> {
    const prev = this.hostMap.get(h.name);
    const until = this.now() + leaseMs;
    this.hostMap.set(h.name, { host: h, until, reapAt: until + marginMs });
    const out = prev === undefined ? "new" : prev.until >= this.now() ? "renewed" : "expired";
    // A host that (re)joins, or whose tags or slots changed, may run what waited for it.
    if (out !== "renewed" || prev?.host.slots !== h.slots || prev.host.tags.join("\0") !== h.tags.join("\0")) {
      for (const p of this.pends) if (this.parked.get(p.run)?.kind === "tags" && tagsIn(p.hostTags, h.tags)) this.parked.delete(p.run);
      this.slotsFreed(h.name, h.slots - this.runningOn(h.name));
      this.version++;
    }
    return out;
  }

  async ping(): Promise<void> {}

  followValue(_key: string): void {}

  /** In process, every read is current: the value as it is now. */
  valueAtHeartbeat(key: string): { readonly value: string | undefined } {
    return { value: this.values.get(key) };
  }

  hostsAtHeartbeat(): number {
    return this.hostMap.size;
  }

  async removeHost(name: string): Promise<void> {
    this.hostMap.delete(name);
  }

  async hosts(): Promise<{ host: HostRecord; up: boolean }[]> {
    return [...this.hostMap.values()].map((e) => ({ host: e.host, up: e.until >= this.now() }));
  }

  private live(name: string): boolean {
    const e = this.hostMap.get(name);
    return e !== undefined && e.until >= this.now();
  }

  async addPend(p: PendRecord, how: PendHow = "new", index: readonly IndexWrite[] = []): Promise<boolean> {
    const phase = this.phaseOf.get(p.run);
    if (how === "recover" && phase !== undefined && phase !== "pending") return false;
    if (how === "requeue" && phase !== "reaped") return false;
    if (this.pends.some((x) => x.run === p.run)) return true;
    this.pends.push(p);
    this.version++;
    this.phaseOf.set(p.run, "pending");
    // The adoption counts as the adopting host's wake-up for it if that host can take it (it looks at once anyway).
    const adopter = this.hostMap.get(p.adoptedBy);
    if (adopter !== undefined && tagsIn(p.hostTags, adopter.host.tags) && this.hasRoom(p.adoptedBy)) this.wokeFor.set(p.run, { at: this.now(), host: p.adoptedBy });
    if (index.length > 0) await this.indexBatch(index);
    if (p.record !== "") this.records.set(p.run, p.record);
    return true;
  }

  async addPendTaking(p: PendRecord, index: readonly IndexWrite[] = []): Promise<Claimed | undefined> {
    if (this.phaseOf.has(p.run) || !this.takenNow(p)) {
      await this.addPend(p, "new", index);
      return undefined;
    }
    this.version++;
    const token = ++this.token;
    this.take({ run: p.run, host: p.adoptedBy, token, flowKey: p.flowKey, resources: p.resources });
    if (index.length > 0) await this.indexBatch(index);
    if (p.record !== "") this.records.set(p.run, p.record);
    return { run: p.run, token, record: p.record };
  }

  /** Whether a pass with `p` on the list would give it to its adopter now (see ClusterState.addPendTaking). */
  private takenNow(p: PendRecord): boolean {
    const me = this.hostMap.get(p.adoptedBy);
    if (me === undefined || !this.live(p.adoptedBy) || !tagsIn(p.hostTags, me.host.tags)) return false;
    const { activeByFlow, runningByHost } = this.counts();
    const free = me.host.slots - (runningByHost.get(p.adoptedBy) ?? 0);
    if (free <= 0) return false;
    const listed = this.pends.length - this.parked.size;
    if (listed > 0 && (p.resources.length > 0 || p.concurrency !== undefined || free <= listed)) return false;
    if (p.resources.some((r) => this.held.has(r))) return false;
    if (p.concurrency !== undefined && (activeByFlow.get(p.flowKey) ?? 0) >= p.concurrency) return false;
    for (const q of this.pends) {
      const on = this.parked.get(q.run);
      if (on === undefined) continue;
      if (on.kind === "resource" && p.resources.includes(on.resource)) return false;
      if (on.kind === "concurrency" && q.flowKey === p.flowKey) return false;
      if ((on.kind === "tags" || on.kind === "slots") && tagsIn(q.hostTags, me.host.tags)) return false;
    }
    for (const [name, e] of this.hostMap) {
      if (name !== p.adoptedBy && e.until >= this.now() && tagsIn(p.hostTags, e.host.tags) && e.host.slots - (runningByHost.get(name) ?? 0) > free) return false;
    }
    return true;
  }

  async removePend(run: string): Promise<boolean> {
    const i = this.pends.findIndex((p) => p.run === run);
    if (i < 0) return false;
    this.pends.splice(i, 1);
    this.parked.delete(run);
    this.wokeFor.delete(run);
    this.phaseOf.set(run, "done");
    this.version++;
    return true;
  }

  private counts(): { activeByFlow: Map<string, number>; runningByHost: Map<string, number> } {
    const activeByFlow = new Map<string, number>();
    const runningByHost = new Map<string, number>();
    for (const a of this.active.values()) {
      activeByFlow.set(a.flowKey, (activeByFlow.get(a.flowKey) ?? 0) + 1);
      runningByHost.set(a.host, (runningByHost.get(a.host) ?? 0) + 1);
    }
    return { activeByFlow, runningByHost };
  }

  async snapshot(since?: number, o: SnapshotOptions = {}): Promise<Snapshot | undefined> {
    if (since === this.version && (o.sameUntil === undefined || this.now() < o.sameUntil)) return undefined;
    const liveEntries = [...this.hostMap.values()].filter((e) => e.until >= this.now());
    if (o.skipIfEmpty === true && this.pends.every((p) => this.parked.has(p.run))) return emptySnapshot(this.version, liveEntries.length);
    const hosts = liveEntries.map((e) => e.host);
    const leaseEnds = new Map(liveEntries.map((e) => [e.host.name, e.until] as const));
    const parkedOn = new Set<string>();
    const forSlots = new Map<string, readonly string[]>();
    for (const p of this.pends) {
      const on = this.parked.get(p.run);
      if (on?.kind === "resource") parkedOn.add(on.resource);
      else if (on?.kind === "slots") forSlots.set(tagSetKey(p.hostTags), p.hostTags);
    }
    return { version: this.version, pends: this.pends.filter((p) => !this.parked.has(p.run)), hosts, liveHosts: hosts.length, leaseEnds, held: new Map(this.held), ...this.counts(), parkedOn, parkedForSlots: [...forSlots.values()] };
  }

  async unparkHeads(heads: readonly ParkedHead[]): Promise<number> {
    let n = 0;
    for (const h of heads) {
      if ("resource" in h && this.held.has(h.resource)) continue;
      const before = h.before;
      const head = this.pends.findIndex((p) => {
        const on = this.parked.get(p.run);
        return "resource" in h ? on?.kind === "resource" && on.resource === h.resource : on?.kind === "slots" && tagSetKey(p.hostTags) === tagSetKey(h.hostTags);
      });
      const limit = before === undefined ? this.pends.length : this.pends.findIndex((p) => p.run === before);
      if (head < 0 || (limit >= 0 && head > limit)) continue;
      this.parked.delete((this.pends[head] as PendRecord).run);
      n++;
    }
    return n;
  }

  async park(pends: readonly ParkRequest[]): Promise<number> {
    const live = [...this.hostMap.values()].filter((e) => e.until >= this.now());
    let n = 0;
    for (const p of pends) {
      if (!this.pends.some((x) => x.run === p.run) || this.parked.has(p.run)) continue;
      const on = p.on;
      const still =
        on.kind === "tags"
          ? !live.some((e) => tagsIn(p.hostTags, e.host.tags))
          : on.kind === "slots"
            ? !live.some((e) => tagsIn(p.hostTags, e.host.tags) && this.runningOn(e.host.name) < e.host.slots)
            : on.kind === "resource"
              ? this.held.has(on.resource)
              : (this.counts().activeByFlow.get(p.flowKey) ?? 0) >= on.limit;
      if (!still) continue;
      this.parked.set(p.run, on);
      // Nobody is about to take it now: brought back, it is unattended (releaseCounted counts it).
      this.wokeFor.delete(p.run);
      if (on.kind === "concurrency") this.limits.set(p.flowKey, on.limit);
      n++;
      // Parked for tags or concurrency, it holds no resource back: their queues move on.
      if (on.kind !== "resource") for (const r of p.resources) this.resourceFreed(r);
    }
    return n;
  }

  /** A free resource's oldest parked pend comes back. */
  private resourceFreed(r: string): void {
    if (this.held.has(r)) return;
    const head = this.pends.find((p) => { const on = this.parked.get(p.run); return on?.kind === "resource" && on.resource === r; });
    if (head !== undefined) this.parked.delete(head.run);
  }

  /**
   * A slot freed on `host` (`n` of them): as many of the pends parked for a slot that it can
   * run come back, oldest first (see slots_freed in the Lua prelude).
   */
  private slotsFreed(host: string, n: number): void {
    const tags = this.hostMap.get(host)?.host.tags;
    if (tags === undefined) return;
    for (const p of this.pends) {
      if (n <= 0) return;
      if (this.parked.get(p.run)?.kind === "slots" && tagsIn(p.hostTags, tags)) {
        this.parked.delete(p.run);
        n--;
      }
    }
  }

  /** A flow under its limit again: as many of its pends parked on concurrency as it has room for come back, oldest first (see concurrency_freed in the Lua prelude). */
  private concurrencyFreed(flowKey: string): void {
    const limit = this.limits.get(flowKey);
    let room = limit === undefined ? 0 : limit - (this.counts().activeByFlow.get(flowKey) ?? 0);
    for (const p of this.pends) {
      if (room <= 0) return;
      if (p.flowKey === flowKey && this.parked.get(p.run)?.kind === "concurrency") {
        this.parked.delete(p.run);
        room--;
      }
    }
  }

  async claim(assignments: readonly Assignment[]): Promise<Claimed[]> {
    const out: Claimed[] = [];
    for (const a of assignments) {
      const i = this.pends.findIndex((p) => p.run === a.run);
      if (i < 0) continue;
      if (a.resources.some((r) => this.held.has(r))) continue;
      if (!this.live(a.host)) continue;
      const { activeByFlow, runningByHost } = this.counts();
      const slots = this.hostMap.get(a.host)?.host.slots ?? 0;
      if ((runningByHost.get(a.host) ?? 0) >= slots) continue;
      if (a.concurrency !== undefined && (activeByFlow.get(a.flowKey) ?? 0) >= a.concurrency) continue;
      if (this.parked.has(a.run)) continue;
      const [p] = this.pends.splice(i, 1);
      this.wokeFor.delete(a.run);
      this.version++;
      const token = ++this.token;
      this.take({ run: a.run, host: a.host, token, flowKey: a.flowKey, resources: a.resources });
      out.push({ run: a.run, token, record: p?.record ?? "" });
    }
    return out;
  }

  async hold(a: Assignment): Promise<number | undefined> {
    const phase = this.phaseOf.get(a.run);
    const mine = this.active.get(a.run)?.host === a.host;
    if (phase !== undefined && !(phase === "active" && mine)) return undefined;
    const token = ++this.token;
    this.take({ run: a.run, host: a.host, token, flowKey: a.flowKey, resources: a.resources });
    this.version++;
    return token;
  }

  async releasedBy(run: string): Promise<{ host: string; token: number } | undefined> {
    return this.releasedByOf.get(run);
  }

  private take(e: ActiveEntry): void {
    this.active.set(e.run, e);
    this.phaseOf.set(e.run, "active");
    for (const r of e.resources) this.held.set(r, e.run);
  }

  async wake(forPends: readonly { readonly run: string; readonly host: string }[], standMs: number, by?: string): Promise<number> {
    const hosts = new Set<string>();
    for (const { run, host } of forPends) {
      const who = this.attending(run, standMs);
      const stands = who !== undefined && (who === host || who !== by);
      if (!this.pends.some((p) => p.run === run && !this.parked.has(run)) || stands) continue;
      this.wokeFor.set(run, { at: this.now(), host });
      hosts.add(host);
    }
    for (const h of hosts) {
      const w = this.waiters.get(h);
      if (w === undefined) this.woken.add(h);
      else {
        this.waiters.delete(h);
        w(true);
      }
    }
    return hosts.size;
  }

  waitWake(host: string, ms: number, signal: AbortSignal): Promise<boolean> {
    if (this.woken.delete(host)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (woke: boolean): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", aborted);
        if (this.waiters.get(host) === done) this.waiters.delete(host);
        resolve(woke);
      };
      const aborted = (): void => done(false);
      const timer = setTimeout(() => done(false), ms);
      timer.unref();
      if (signal.aborted) return done(false);
      signal.addEventListener("abort", aborted, { once: true });
      this.waiters.get(host)?.(false);
      this.waiters.set(host, done);
    });
  }

  async release(run: string, token: number): Promise<boolean> {
    const a = this.active.get(run);
    if (a === undefined || a.token !== token) return this.releasedByOf.get(run)?.token === token;
    this.releasedByOf.set(run, { host: a.host, token });
    if (this.releasedByOf.size > 10_000) this.releasedByOf.delete(this.releasedByOf.keys().next().value as string);
    this.drop(a);
    this.slotsFreed(a.host, 1);
    this.phaseOf.set(run, "done");
    this.version++;
    return true;
  }

  async releaseCounted(run: string, token: number, index: readonly IndexWrite[] = []): Promise<Released> {
    const releaser = this.active.get(run)?.host ?? this.releasedByOf.get(run)?.host;
    const released = await this.release(run, token);
    const { refused } = released && index.length > 0 ? await this.indexBatch(index) : { refused: [] };
    return { released, unattended: this.unattended(released ? releaser : undefined), refused };
  }

  /**
   * Listed pends no host but `releaser` was woken for within WAKE_STANDS_MS (Released.unattended);
   * a list of more than 64 counted whole. One whose stand is the releasing host's own counts:
   * that host may have looked already and left it waiting, and nobody else looks.
   */
  private unattended(releaser: string | undefined): number {
    const listed = this.pends.length - this.parked.size;
    if (listed === 0 || listed > 64) return listed;
    return this.pends.filter((p) => {
      if (this.parked.has(p.run)) return false;
      const who = this.attending(p.run, WAKE_STANDS_MS);
      return who === undefined || who === releaser;
    }).length;
  }

  /** The host a wake-up for `run` stands for: woken within `standMs`, with a free slot (one that filled up leaves it to whoever looks). */
  private attending(run: string, standMs: number): string | undefined {
    const w = this.wokeFor.get(run);
    return w !== undefined && w.at + standMs > this.now() && this.hasRoom(w.host) ? w.host : undefined;
  }

  private hasRoom(host: string): boolean {
    return this.runningOn(host) < (this.hostMap.get(host)?.host.slots ?? 0);
  }

  private runningOn(host: string): number {
    let running = 0;
    for (const a of this.active.values()) if (a.host === host) running++;
    return running;
  }

  private drop(a: ActiveEntry): void {
    this.active.delete(a.run);
    for (const r of a.resources) {
      if (this.held.get(r) !== a.run) continue;
      this.held.delete(r);
      this.resourceFreed(r);
    }
    this.concurrencyFreed(a.flowKey);
  }

  async isCurrent(run: string, token: number): Promise<boolean> {
    return this.active.get(run)?.token === token;
  }

  async reapDead(): Promise<ActiveEntry[]> {
    const dead = [...this.active.values()].filter((a) => (this.hostMap.get(a.host)?.reapAt ?? -1) < this.now());
    for (const a of dead) {
      this.drop(a);
      this.phaseOf.set(a.run, "reaped");
    }
    if (dead.length > 0) this.version++;
    return dead;
  }

  // --- the run index (store/local-run-index.ts) ----------------------------------------

  indexRun(r: IndexedRun): Promise<void> {
    return this.index.indexRun(r);
  }

  indexNode(run: string, node: string, json: string): Promise<void> {
    return this.index.indexNode(run, node, json);
  }

  indexBatch(writes: readonly IndexWrite[]): Promise<{ readonly refused: readonly { readonly run: string; readonly why: string }[] }> {
    return this.index.indexBatch(writes);
  }

  getRun(run: string): Promise<{ json: string; nodes: Record<string, string> } | undefined> {
    return this.index.getRun(run);
  }

  listRuns(q: IndexQuery): Promise<string[]> {
    return this.index.listRuns(q);
  }

  countRuns(flow: string): Promise<Record<"pending" | "active" | "archived", number>> {
    return this.index.countRuns(flow);
  }

  async phases(runs: readonly string[]): Promise<(RunPhase | undefined)[]> {
    return runs.map((r) => this.phaseOf.get(r));
  }

  async getRecord(run: string): Promise<string | undefined> {
    return this.records.get(run);
  }

  async claimTick(key: string, ttlMs: number): Promise<boolean> {
    const until = this.ticks.get(key);
    if (until !== undefined && until > this.now()) return false;
    this.ticks.set(key, this.now() + ttlMs);
    return true;
  }

  async getValue(key: string): Promise<string | undefined> {
    return this.values.get(key);
  }

  async setValue(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }

  async deleteValue(key: string): Promise<void> {
    this.values.delete(key);
  }

  async close(): Promise<void> {}
}

/** A host-tag set's identity, whatever the tags' order. */
function tagSetKey(tags: readonly string[]): string {
  return [...tags].sort().join("\0");
}

/** Whether a host with tags `have` has every tag of `want`. */
function tagsIn(want: readonly string[], have: readonly string[]): boolean {
  return want.every((t) => have.includes(t));
}
