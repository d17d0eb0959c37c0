/**
 * The ClusterState of a cluster, in Redis: the same contract as LocalClusterState
 * (store/local-state.ts), atomic across any number of hosts. Every state change is one Lua
 * script (store/redis-scripts.ts) over a fixed set of tables (store/redis-keys.ts); leases
 * are compared on Redis server time, so host clocks do not matter.
 *
 * Bounded: done and reaped phases are forgotten after `phaseTtlMs`, a done run's record
 * after `doneRecordTtlMs`, and the run index (store/redis-run-index.ts) keeps at most
 * `archivedPerFlow` archived runs per flow (the oldest go, with their node hashes).
 *
 * Lost replies: a claim or reap whose reply is lost (a timeout, a dropped connection) may
 * still have been applied. Each carries an id and its answer is kept for a while, so it is
 * sent again with the same id once Redis answers, for up to `replayWindowMs`; only then
 * does it fail.
 *
 * One difference from the in-process state, on purpose: `snapshot().pends` carry an empty
 * `record`. The record of a pend reaches the host that takes it with its claim; reading
 * every pend's record (the whole flow definition) on each dispatch pass would make the
 * snapshot cost grow with flow size × pending runs.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { emptySnapshot, WAKE_STANDS_MS, type SnapshotOptions } from "./cluster-state.js";
import type { HeldRun, Resynced, RunPhase, ActiveEntry, ParkedHead, ParkRequest, Assignment, Claimed, ClusterState, HostRecord, IndexedRun, IndexQuery, IndexWrite, PendHow, PendRecord, Released, Snapshot, SnapshotHost } from "./cluster-state.js";
import { redisKeys, type RedisKeys } from "./redis-keys.js";
import { LuaScript, packList, unpackList } from "./lua-script.js";
import { SCRIPTS } from "./redis-scripts.js";
import { RedisRunIndex } from "./redis-run-index.js";
import { asArray, asStrings, counts, pairs, parseHost, parsePendViews, reason, SameEnd, transportError } from "./redis-replies.js";
import { errorMessage, FloeError } from "../flows/errors.js";

export interface RedisStateOptions {
  /** @defaultValue DEFAULT_CLUSTER ("floe", store/cluster-name.ts) */
  readonly cluster?: string;
  /** The Redis URL, for messages (without its password). */
  readonly url?: string;
  /** How long a done or reaped run's phase is remembered. @defaultValue 7 days */
  readonly phaseTtlMs?: number;
  /** How long a done run's record is kept (a reaped run's is kept with its phase). @defaultValue 1 hour */
  readonly doneRecordTtlMs?: number;
  /** Archived runs kept in the run index per flow. @defaultValue 10,000 */
  readonly archivedPerFlow?: number;
  /** How long a claim or reap whose reply was lost is retried to learn its outcome. @defaultValue 10 s */
  readonly replayWindowMs?: number;
  /** How long a dead host with nothing left to reap stays in the registry. @defaultValue 15 minutes */
  readonly forgetHostsAfterMs?: number;
  /** Whether close() also closes the connection. @defaultValue true */
  readonly ownsConnection?: boolean;
  /**
   * The failover epoch of the primary at `at` (Redis Sentinel's config-epoch for it), asked
   * once per connection; absent for a plain redis:// URL (epoch 0, tokens as before).
   */
  readonly epoch?: (at: { readonly host: string; readonly port: number }) => Promise<number>;
  /**
   * Through Sentinel (`epoch` given): a connection that answered nothing for this long while
   * commands timed out is dropped and made again, asking the sentinels where the primary is.
   * @defaultValue 4000
   */
  readonly silentReconnectMs?: number;
}

/**
 * Redis could not be reached or did not answer; the call may be retried. A FloeError
 * (E_UNAVAILABLE, 503), so the API and callers that wait for the state to come back
 * (errorCode(e) === "E_UNAVAILABLE") need not know where it came from.
 */
export class RedisUnavailableError extends FloeError {
  constructor(
    message: string,
    /** False when the command was never sent (no connection), so it was not applied. */
    readonly maybeApplied: boolean,
    options?: ErrorOptions,
  ) {
    super("E_UNAVAILABLE", message, options);
    this.name = "RedisUnavailableError";
  }
}

const DAY = 24 * 3600_000;
/**
 * A host's periodic reap runs at least this often even when nothing can be reaped: a reap
 * also prunes forgotten phases and records, and forgets hosts dead past the retention.
 */
const REAP_ANYWAY_MS = 30_000;
/** Pends parked per script. */
const PARK_BATCH = 500;


/** Replies of a node that is not (or no longer) the primary of the floe cluster's slot. */
const MOVED = /^(MOVED|ASK|READONLY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN)\b/;

export class RedisClusterState implements ClusterState {
  readonly keys: RedisKeys;
  readonly url: string;
  private readonly phaseTtlMs: number;
  private readonly doneRecordTtlMs: number;
  /** The run index's part of the contract. */
  private readonly index: RedisRunIndex;
  private readonly replayWindowMs: number;
  private readonly ownsConnection: boolean;
  private readonly forgetHostsAfterMs: number;
  private closing: Promise<void> | undefined;
  /** The connection waitWake blocks on, made on first use. */
  private blocker: Redis | undefined;
  private readonly epochOf: RedisStateOptions["epoch"];
  private readonly silentReconnectMs: number;
  /** When Redis last answered a command of this state (performance.now()). */
  private answeredAt = performance.now();
  /** The failover epoch learned for the connection it was asked on. */
  private learned: { readonly stream: unknown; readonly epoch: Promise<number> } | undefined;
  /** The failover epoch this host last registered its runs at (registered()); undefined: not told. */
  private registeredAt: number | undefined;
  /** How long hosts get to register again after a failover: the last heartbeat's lease + margin. */
  private settleMs = 10_000;
  /**
   * The registry as dispatch reads it (live or not: liveness comes with each snapshot), at
   * the state's host version: a snapshot sends it again only when that version moved, not
   * hundreds of host records per pass.
   */
  private hostTable: { readonly ver: string; readonly hosts: readonly SnapshotHost[] } | undefined;
  /**
   * performance.now() before which no host's runs can be reaped: the last heartbeat read the
   * earliest reap time of all hosts. Until then reapDead has nothing to do and asks nothing
   * (one script per host per renewal, most of Redis's idle time at hundreds of hosts).
   */
  private reapNotBefore = Number.NEGATIVE_INFINITY;
  /** The value heartbeats read (followValue), and what the last one read. */
  private followed: string | undefined;
  private atHeartbeat: { readonly key: string; readonly value: string | undefined } | undefined;
  /** How many hosts the registry held at the last heartbeat (hostsAtHeartbeat). */
  private hostsRegistered: number | undefined;
  /** performance.now() of the last reap this state ran (its start counts: the first heartbeat tells whether one is due). */
  private reapedAt = performance.now();

  constructor(
    readonly redis: Redis,
    o: RedisStateOptions = {},
  ) {
    this.keys = redisKeys(o.cluster);
    this.url = o.url ?? "redis";
    this.phaseTtlMs = o.phaseTtlMs ?? 7 * DAY;
    this.doneRecordTtlMs = o.doneRecordTtlMs ?? 3600_000;
    this.index = new RedisRunIndex({ redis, keys: this.keys, archivedPerFlow: o.archivedPerFlow ?? 10_000, call: (op, f) => this.cmd(op, f), fail: (op, e) => this.fail(op, e) });
    this.replayWindowMs = o.replayWindowMs ?? 10_000;
    this.ownsConnection = o.ownsConnection ?? true;
    this.forgetHostsAfterMs = o.forgetHostsAfterMs ?? 15 * 60_000;
    this.epochOf = o.epoch;
    this.silentReconnectMs = o.silentReconnectMs ?? 4000;
  }

  /** Redis's clock (TIME), in epoch milliseconds: the cluster's time (hub/cluster-clock.ts). */
  async time(): Promise<number> {
    const [sec, usec] = await this.cmd("TIME", () => this.redis.time());
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }

  // --- plumbing ----------------------------------------------------------------------

  private fail(op: string, e: unknown): Error {
    const msg = errorMessage(e);
    if (msg.includes("Command timed out")) this.dropIfSilent();
    if (MOVED.test(msg)) {
      // Not the primary of the floe cluster's slot any more (a failover demoted it): through
      // Sentinel or on Redis Cluster the connection is made again, to the primary as it is
      // found now; on a plain URL it would only come back to the same node.
      if (this.epochOf === undefined) return new Error(`cluster state: ${op} failed at Redis ${this.url}: ${msg} — this Redis is a Redis Cluster node that does not own the floe cluster's slot, or a replica: use --redis=redis+cluster://NODE:PORT,… (or the primary's address)`, { cause: e });
      if (this.redis.status === "ready") this.redis.disconnect(true);
      return new RedisUnavailableError(`cluster state unavailable: ${op}: Redis at ${this.url} is no longer the primary (${msg.split(" ")[0]}); connecting to the one found now`, false, { cause: e });
    }
    if (transportError(e)) return new RedisUnavailableError(`cluster state unavailable: ${op} failed: Redis at ${this.url} ${reason(msg)}`, !msg.includes("Stream isn't writeable"), { cause: e });
    return new Error(`cluster state: ${op} failed at Redis ${this.url}: ${msg}`, { cause: e });
  }

  /**
   * A partition leaves a connection open and silent: commands time out, the socket never
   * closes, and the client would wait on a primary Sentinel has replaced for ever, never
   * asking the sentinels again (test/cluster/sentinel-partition.test.ts). Through Sentinel, a
   * connection that answered nothing for `silentReconnectMs` is dropped and made again,
   * which asks them where the primary is now. Commands in flight fail as in any dropped
   * connection (a claim's or a reap's outcome is learned again by `once`).
   */
  private dropIfSilent(): void {
    if (this.epochOf === undefined || this.redis.status !== "ready") return;
    if (performance.now() - this.answeredAt < this.silentReconnectMs) return;
    this.answeredAt = performance.now(); // one reconnection per silence
    this.redis.disconnect(true);
  }

  /** `epoch`: the script acts for this host and checks its failover epoch (see_epoch in the prelude). */
  private async state(script: LuaScript, args: readonly (string | number)[], extraKeys: readonly string[] = [], epoch = false): Promise<unknown> {
    const e = epoch ? await this.epochArg(script.name) : "";
    try {
      const out = await script.run(this.redis, [...this.keys.tables, ...extraKeys], [this.phaseTtlMs, this.doneRecordTtlMs, e, this.settleMs, ...args]);
      this.answeredAt = performance.now();
      return out;
    } catch (err) {
      if (err instanceof Error && err.message.includes("E_EPOCH")) {
        // The primary has seen a later failover than this connection's answer said: ask again.
        this.learned = undefined;
        throw new RedisUnavailableError(`cluster state unavailable: ${script.name} refused: ${err.message}`, false, { cause: err });
      }
      throw this.fail(script.name, err);
    }
  }

  /**
   * The failover epoch of the primary this connection reaches (0 without Sentinel): asked
   * of the sentinels once per connection, so a connection made to a newly promoted primary
   * learns its epoch before any script acts for this host on it.
   */
  async failoverEpoch(): Promise<number> {
    return Number(await this.epochArg("failoverEpoch")) || 0;
  }

  /** This host registered its runs again at `epoch` (hub/failover.ts): ownership may be judged again. */
  registered(epoch: number): void {
    this.registeredAt = epoch;
  }

  /**
   * A new primary may lack a claim of this host's; until the host has registered its runs
   * there, "is this token current?" would wrongly answer no (and the host drop a run that
   * is still its own), so the question waits.
   */
  private async ownershipKnown(op: string): Promise<void> {
    if (this.epochOf === undefined || this.registeredAt === undefined) return;
    const epoch = Number(await this.epochArg(op));
    if (epoch > this.registeredAt) throw new RedisUnavailableError(`cluster state unavailable: ${op}: the state failed over (epoch ${epoch}) and this host has not registered its runs there yet`, false);
  }

  private async epochArg(op: string): Promise<string> {
    const ask = this.epochOf;
    if (ask === undefined) return "";
    const stream = this.redis.stream;
    if (this.redis.status !== "ready") throw new RedisUnavailableError(`cluster state unavailable: ${op}: Redis at ${this.url} is not connected (reconnecting)`, false);
    if (this.learned?.stream !== stream) {
      const at = { host: (stream.remoteAddress ?? "").replace(/^::ffff:/, ""), port: stream.remotePort ?? 0 };
      const epoch = ask(at);
      const learned = { stream, epoch };
      this.learned = learned;
      epoch.catch(() => {
        if (this.learned === learned) this.learned = undefined;
      });
    }
    try {
      return String(await this.learned.epoch);
    } catch (e) {
      throw new RedisUnavailableError(`cluster state unavailable: ${op}: the failover epoch of Redis at ${this.url} is not known yet (${errorMessage(e)})`, false, { cause: e });
    }
  }

  private async cmd<T>(op: string, f: () => Promise<T>): Promise<T> {
    try {
      const out = await f();
      this.answeredAt = performance.now();
      return out;
    } catch (e) {
      throw this.fail(op, e);
    }
  }

  /**
   * Runs a script whose reply must not be lost: when the connection fails after it was
   * sent, it is sent again with the same reply key until Redis answers (the script returns
   * the kept answer if the first one was applied).
   */
  private async once(script: LuaScript, args: readonly (string | number)[], epoch = false, moreKeys: readonly string[] = []): Promise<unknown> {
    const reply = this.keys.reply(randomUUID());
    const deadline = performance.now() + this.replayWindowMs;
    let outcomeUnknown = false;
    for (;;) {
      try {
        return await this.state(script, args, [reply, ...moreKeys], epoch);
      } catch (e) {
        if (!(e instanceof RedisUnavailableError)) throw e;
        outcomeUnknown ||= e.maybeApplied;
        if (!outcomeUnknown || performance.now() >= deadline || this.redis.status === "end") throw e;
        await this.waitReady(deadline);
      }
    }
  }

  private async waitReady(deadline: number): Promise<void> {
    while (this.redis.status !== "ready" && performance.now() < deadline) {
      if (this.redis.status === "end") return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // --- hosts -------------------------------------------------------------------------

  async heartbeat(h: HostRecord, leaseMs: number, marginMs = 0): Promise<"new" | "renewed" | "expired"> {
    this.settleMs = Math.max(1, Math.round(leaseMs + marginMs));
    const sent = performance.now();
    const args = [h.name, JSON.stringify(h), h.slots, Math.max(1, Math.round(leaseMs)), Math.max(0, Math.round(marginMs)), packList([...h.tags].sort())];
    const followed = this.followed;
    const keys = followed !== undefined ? [this.keys.value(followed)] : [];
    let reply = await this.state(SCRIPTS.renew, args, keys, true);
    if (Array.isArray(reply) && reply[0] === "slow") reply = await this.state(SCRIPTS.heartbeat, args, keys, true);
    const [r, first, now, has, value, registered] = Array.isArray(reply) ? reply.map(String) : [];
    if (r !== "new" && r !== "renewed" && r !== "expired") throw this.fail("heartbeat", `unexpected reply ${String(reply)}`);
    if (followed !== undefined && followed === this.followed) this.atHeartbeat = { key: followed, value: has === "1" ? value : undefined };
    if (registered !== undefined && registered !== "") this.hostsRegistered = Number(registered);
    // Counted from when it was sent: the earliest reap time comes no later on this clock.
    // A host that registers later with a shorter lease is seen by the next heartbeat.
    this.reapNotBefore = first !== undefined && first !== "" ? sent + (Number(first) - Number(now)) : Number.NEGATIVE_INFINITY;
    return r;
  }

  followValue(key: string): void {
    this.followed = key;
    this.atHeartbeat = undefined;
  }

  valueAtHeartbeat(key: string): { readonly value: string | undefined } | undefined {
    return this.atHeartbeat?.key === key ? { value: this.atHeartbeat.value } : undefined;
  }

  hostsAtHeartbeat(): number | undefined {
    return this.hostsRegistered;
  }

  async removeHost(name: string): Promise<void> {
    await this.cmd("removeHost", () =>
      this.redis
        .multi()
        .hdel(this.keys.table("hosts"), name)
        .hdel(this.keys.table("leases"), name)
        .zrem(this.keys.table("leaseEnd"), name)
        .hdel(this.keys.table("slots"), name)
        .zrem(this.keys.table("reapAt"), name)
        .hdel(this.keys.table("hostTags"), name)
        .zrem(this.keys.table("slotRank"), name)
        .incr(this.keys.table("hostVer"))
        .exec(),
    );
  }

  async ping(): Promise<void> {
    await this.cmd("ping", () => this.redis.ping());
  }

  async hosts(): Promise<{ host: HostRecord; up: boolean }[]> {
    const [now, hosts, leases] = asArray(await this.state(SCRIPTS.hosts, []), "hosts", 3);
    const until = pairs(leases);
    const t = Number(now);
    const out: { host: HostRecord; up: boolean }[] = [];
    for (const [name, json] of pairs(hosts)) {
      const host = parseHost(json);
      if (host !== undefined) out.push({ host, up: Number(until.get(name) ?? -1) >= t });
    }
    return out;
  }

  // --- the pending list and active runs ----------------------------------------------

  async addPend(p: PendRecord, how: PendHow = "new", index: readonly IndexWrite[] = []): Promise<boolean> {
    const { keys, args } = this.addPendArgs(p, how, false, index);
    // No take: its reply key is never written.
    return (await this.state(SCRIPTS.addPend, args, [this.keys.reply("-"), ...keys])) === 1;
  }

  async addPendTaking(p: PendRecord, index: readonly IndexWrite[] = []): Promise<Claimed | undefined> {
    const { keys, args } = this.addPendArgs(p, "new", true, index);
    const r = await this.once(SCRIPTS.addPend, args, true, keys);
    if (!Array.isArray(r)) return undefined;
    const [, run, token, record] = asStrings(r, "addPend");
    return { run: String(run), token: Number(token), record: String(record) };
  }

  private addPendArgs(p: PendRecord, how: PendHow, take: boolean, index: readonly IndexWrite[]): { keys: string[]; args: (string | number)[] } {
    const { record, ...view } = p;
    const { keys, args } = index.length > 0 ? this.index.applyArgs(index) : { keys: [], args: [""] };
    const meta = packList([p.adoptedBy, p.flowKey, ...p.resources]);
    return { keys, args: [p.run, how, JSON.stringify(view), record, p.adoptedBy, packList([...p.hostTags].sort()), take ? "1" : "", p.concurrency ?? "", meta, ...args] };
  }

  async removePend(run: string): Promise<boolean> {
    return (await this.state(SCRIPTS.removePend, [run])) === 1;
  }

  async snapshot(since?: number, o: SnapshotOptions = {}): Promise<Snapshot | undefined> {
    const known = this.hostTable?.ver ?? "";
    const reply = asArray(await this.state(SCRIPTS.snapshot, [since === undefined ? "" : String(since), o.skipIfEmpty === true ? "1" : "", o.sameUntil === undefined ? "" : String(o.sameUntil), known]), "snapshot", 2);
    if (reply[0] === "same") return undefined;
    if (reply[0] === "empty") return emptySnapshot(Number(reply[1]), Number(reply[2] ?? 0));
    const [, version, , views, hostVer, sent, hostTags, hostSlots, lapsed, firstEnd, held, flowActive, running, parkedOn, parkedForSlots] = asArray(reply, "snapshot", 15);
    if (sent === "1" || this.hostTable === undefined) {
      const slots = pairs(hostSlots);
      // Hosts share a few tag sets: one array per set (dispatch matches tags once per set).
      const tagSets = new Map<string, readonly string[]>();
      const table: SnapshotHost[] = [];
      for (const [name, packed] of pairs(hostTags)) {
        let tags = tagSets.get(packed);
        if (tags === undefined) tagSets.set(packed, (tags = unpackList(packed)));
        const n = Number(slots.get(name));
        if (Number.isFinite(n)) table.push({ name, tags, slots: n });
      }
      this.hostTable = { ver: String(hostVer), hosts: table };
    }
    const pends = parsePendViews(String(views));
    const lapsedNames = asStrings(lapsed, "snapshot");
    const out = new Set(lapsedNames);
    // Usually nobody lapsed: the cached table itself, so dispatch sees the same hosts as last time.
    const live = firstEnd === "" ? [] : lapsedNames.length === 0 ? this.hostTable.hosts : this.hostTable.hosts.filter((h) => !out.has(h.name));
    // Each live host's lease ends no earlier than the earliest of them: a pass that counts
    // on a host being alive looks again by then (sameUntil), without 500 lease ends per pass.
    const leaseEnds = new SameEnd(live, Number(firstEnd));
    return { version: Number(version), pends, hosts: live, liveHosts: live.length, leaseEnds, held: pairs(held), activeByFlow: counts(flowActive), runningByHost: counts(running), parkedOn: new Set(asStrings(parkedOn, "snapshot")), parkedForSlots: asStrings(parkedForSlots, "snapshot").map(unpackList) };
  }

  async unparkHeads(heads: readonly ParkedHead[]): Promise<number> {
    if (heads.length === 0) return 0;
    return Number(await this.state(SCRIPTS.unparkHeads, heads.flatMap((h) => ("resource" in h ? ["r", h.resource] : ["s", packList([...h.hostTags].sort())]).concat(h.before ?? ""))));
  }

  async park(pends: readonly ParkRequest[]): Promise<number> {
    if (pends.length === 0) return 0;
    // A big backlog in scripts of a bounded size: one script blocks Redis while it runs.
    if (pends.length > PARK_BATCH) {
      let n = 0;
      for (let i = 0; i < pends.length; i += PARK_BATCH) n += await this.park(pends.slice(i, i + PARK_BATCH));
      return n;
    }
    const args: (string | number)[] = [pends.length];
    for (const p of pends) {
      const resources = packList(p.resources);
      if (p.on.kind === "tags") args.push("t", p.run, packList([...p.hostTags].sort()), "", resources);
      else if (p.on.kind === "slots") args.push("s", p.run, packList([...p.hostTags].sort()), "", resources);
      else if (p.on.kind === "resource") args.push("r", p.run, p.on.resource, "", resources);
      else args.push("c", p.run, p.flowKey, p.on.limit, resources);
    }
    return Number(await this.state(SCRIPTS.park, args));
  }

  async claim(assignments: readonly Assignment[]): Promise<Claimed[]> {
    if (assignments.length === 0) return [];
    const args: (string | number)[] = [assignments.length];
    for (const a of assignments) args.push(a.run, a.host, a.flowKey, a.concurrency === undefined ? "" : a.concurrency, packList([a.host, a.flowKey, ...a.resources]));
    const r = asStrings(await this.once(SCRIPTS.claim, args, true), "claim");
    const out: Claimed[] = [];
    for (let i = 1; i + 2 < r.length; i += 3) out.push({ run: r[i] as string, token: Number(r[i + 1]), record: r[i + 2] as string });
    return out;
  }

  async hold(a: Assignment): Promise<number | undefined> {
    const r = Number(await this.state(SCRIPTS.hold, [a.run, a.host, packList([a.host, a.flowKey, ...a.resources])], [], true));
    return r > 0 ? r : undefined;
  }

  async wake(forPends: readonly { readonly run: string; readonly host: string }[], standMs: number, by = ""): Promise<number> {
    if (forPends.length === 0) return 0;
    const args: (string | number)[] = [Math.max(0, Math.round(standMs)), by];
    for (const f of forPends) args.push(f.run, f.host);
    return Number(await this.state(SCRIPTS.wake, args, forPends.map((f) => this.keys.wake(f.host))));
  }

  async waitWake(host: string, ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted || this.closing !== undefined) return false;
    // A blocking pop holds its connection: it gets one of its own, which an abort closes.
    if (this.blocker === undefined) {
      this.blocker = this.redis.duplicate({ commandTimeout: ms + 2000, enableOfflineQueue: true, maxRetriesPerRequest: 1 });
      // Its failures reach the waiting call (which pauses and reconnects); not the process.
      this.blocker.on("error", () => undefined);
    }
    const b = this.blocker;
    const abort = (): void => b.disconnect();
    signal.addEventListener("abort", abort, { once: true });
    try {
      return (await b.blpop(this.keys.wake(host), Math.max(0.01, ms / 1000))) !== null;
    } catch {
      if (this.blocker === b && !signal.aborted) {
        // Broken or timed out: a fresh connection next time, after a pause (Redis may be away).
        this.blocker = undefined;
        b.disconnect();
        await new Promise((r) => setTimeout(r, Math.min(ms, 500)).unref());
      }
      return false;
    } finally {
      signal.removeEventListener("abort", abort);
      if (signal.aborted && this.blocker === b) this.blocker = undefined;
    }
  }

  async release(run: string, token: number, o: { readonly registering?: boolean } = {}): Promise<boolean> {
    if (o.registering !== true) await this.ownershipKnown("release");
    return (await this.released(run, token)).released;
  }

  async releaseCounted(run: string, token: number, index: readonly IndexWrite[] = []): Promise<Released> {
    await this.ownershipKnown("release");
    return this.released(run, token, index);
  }

  private async released(run: string, token: number, index: readonly IndexWrite[] = []): Promise<Released> {
    const { keys, args } = index.length > 0 ? this.index.applyArgs(index) : { keys: [], args: [""] };
    const reply = asArray(await this.state(SCRIPTS.release, [run, String(token), WAKE_STANDS_MS, ...args], [this.keys.reply(`release:${run}`), ...keys]), "release", 4);
    const [ok, unattended, trimmed, refused] = reply;
    return { released: Number(ok) === 1, unattended: Number(unattended), refused: await this.index.applied(trimmed, refused, "release") };
  }

  async releasedBy(run: string): Promise<{ host: string; token: number } | undefined> {
    await this.ownershipKnown("releasedBy");
    const v = await this.cmd("releasedBy", () => this.redis.get(this.keys.reply(`release:${run}`)));
    const at = v?.lastIndexOf(":") ?? -1;
    if (v === null || v === undefined || at <= 0) return undefined;
    return { host: v.slice(0, at), token: Number(v.slice(at + 1)) };
  }

  async isCurrent(run: string, token: number): Promise<boolean> {
    await this.ownershipKnown("isCurrent");
    const t = await this.cmd("isCurrent", () => this.redis.hget(this.keys.table("tokens"), run));
    return t !== null && t === String(token);
  }

  async resync(host: string, runs: readonly HeldRun[]): Promise<Resynced> {
    const args: (string | number)[] = [host, runs.length];
    for (const r of runs) args.push(r.run, String(r.token), packList([host, r.flowKey, ...r.resources]), r.record);
    const reply = asStrings(await this.state(SCRIPTS.resync, args, [], true), "resync");
    const out: { restored: string[]; lost: string[]; blocked: string[]; unnamed: { run: string; token: number }[] } = { restored: [], lost: [], blocked: [], unnamed: [] };
    let i = 1;
    for (; i + 1 < reply.length && reply[i] !== "--"; i += 2) {
      if (reply[i + 1] === "restored") out.restored.push(reply[i] as string);
      else if (reply[i + 1] === "lost") out.lost.push(reply[i] as string);
      else if (reply[i + 1] === "blocked") out.blocked.push(reply[i] as string);
    }
    for (i += 1; i + 1 < reply.length; i += 2) out.unnamed.push({ run: reply[i] as string, token: Number(reply[i + 1]) });
    return out;
  }

  async reapDead(o: { readonly ifDue?: boolean } = {}): Promise<ActiveEntry[]> {
    const t = performance.now();
    if (o.ifDue === true && t < this.reapNotBefore && t - this.reapedAt < REAP_ANYWAY_MS) return [];
    this.reapedAt = t;
    const r = asStrings(await this.once(SCRIPTS.reap, [this.forgetHostsAfterMs], true), "reapDead");
    const out: ActiveEntry[] = [];
    for (let i = 1; i + 2 < r.length; i += 3) {
      const [host = "", flowKey = "", ...resources] = unpackList(r[i + 2] as string);
      out.push({ run: r[i] as string, host, token: Number(r[i + 1]), flowKey, resources });
    }
    return out;
  }

  // --- the run index (store/redis-run-index.ts) ----------------------------------------

  indexRun(r: IndexedRun): Promise<void> {
    return this.index.indexRun(r);
  }

  indexBatch(writes: readonly IndexWrite[]): Promise<{ readonly refused: readonly { readonly run: string; readonly why: string }[] }> {
    return this.index.indexBatch(writes);
  }

  indexNode(run: string, node: string, json: string): Promise<void> {
    return this.index.indexNode(run, node, json);
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
    if (runs.length === 0) return [];
    const got = await this.cmd("phases", () => this.redis.hmget(this.keys.table("phase"), ...runs));
    return got.map((p) => (p === "pending" || p === "active" || p === "done" || p === "reaped" ? p : undefined));
  }

  async getRecord(run: string): Promise<string | undefined> {
    return (await this.cmd("getRecord", () => this.redis.hget(this.keys.table("records"), run))) ?? undefined;
  }

  // --- ticks and values --------------------------------------------------------------

  async claimTick(key: string, ttlMs: number): Promise<boolean> {
    const r = await this.cmd("claimTick", () => this.redis.set(this.keys.tick(key), "1", "PX", Math.max(1, Math.ceil(ttlMs)), "NX"));
    return r === "OK";
  }

  async getValue(key: string): Promise<string | undefined> {
    return (await this.cmd("getValue", () => this.redis.get(this.keys.value(key)))) ?? undefined;
  }

  async setValue(key: string, value: string): Promise<void> {
    await this.cmd("setValue", () => this.redis.set(this.keys.value(key), value));
  }
  async deleteValue(key: string): Promise<void> {
    await this.cmd("deleteValue", () => this.redis.del(this.keys.value(key)));
  }


  /** Idempotent. Closes the connection too when this state owns it (openRedis). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.blocker?.disconnect();
      this.blocker = undefined;
      if (!this.ownsConnection || this.redis.status === "end") return;
      if (this.redis.status === "ready") {
        await Promise.race([this.redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
      }
      this.redis.disconnect();
    })();
    return this.closing;
  }
}

