/**
 * The state every host of a cluster shares: live hosts (with leases), the pending list,
 * held resources, active runs with their fencing tokens, a run index, and once-per-cluster
 * ticks. Embedded hosts use LocalClusterState below; clusters use RedisClusterState
 * (store/redis-state.ts). The hub decides which pends it takes (hub/dispatch.ts) and
 * `claim`s them; a claim is validated and applied atomically, so two hosts can never take
 * the same pend or the same resource, even when they decided at the same time.
 */

export interface PendView {
  readonly run: string;
  /** `flow/ver`; concurrency is counted per flow version. */
  readonly flowKey: string;
  readonly hostTags: readonly string[];
  /** Resource tags, plus `reuse-space:<flow>` for flows that reuse their workspace. */
  readonly resources: readonly string[];
  readonly concurrency?: number;
}

export interface SnapshotOptions {
  /**
   * An empty pending list answers with nothing else (no hosts, locks or counts): a host
   * woken with nothing pending to decide over pays for no tables.
   */
  readonly skipIfEmpty?: boolean;
  /**
   * With `since`: "unchanged" holds only before this instant on the state's clock. A
   * decision that gave runs to other hosts counted on them being alive; once one of their
   * leases may have lapsed, the same version no longer means the same decision (a host's
   * lease lapsing changes no version: liveness is read from lease times).
   */
  readonly sameUntil?: number;
}

/** A snapshot of a state with nothing pending, as skipIfEmpty answers it: how many hosts are live, and nothing else. */
export function emptySnapshot(version: number, liveHosts: number): Snapshot {
  return { version, pends: [], hosts: [], liveHosts, leaseEnds: new Map(), held: new Map(), activeByFlow: new Map(), runningByHost: new Map(), parkedOn: new Set(), parkedForSlots: [] };
}

/**
 * What a pend waits for, as dispatch decided (hub/dispatch.ts): a live host with its tags,
 * a resource, its flow's concurrency, or a free slot on a live host with its tags.
 */
export type ParkReason = { readonly kind: "tags" } | { readonly kind: "resource"; readonly resource: string } | { readonly kind: "concurrency"; readonly limit: number } | { readonly kind: "slots" };

/**
 * What unparkHeads brings back, if it is older than `before` when given: the oldest pend
 * parked on a resource that is not held, or the oldest parked for a slot among those that
 * need these host tags.
 */
export type ParkedHead = ({ readonly resource: string } | { readonly hostTags: readonly string[] }) & { readonly before?: string };

export interface ParkRequest extends PendView {
  readonly on: ParkReason;
}

export type PendHow = "new" | "recover" | "requeue";

/** Where a run is in the shared state; "reaped" means taken from a host whose lease lapsed. */
export type RunPhase = "pending" | "active" | "done" | "reaped";

export interface HostRecord {
  readonly name: string;
  readonly tags: readonly string[];
  readonly slots: number;
  readonly running: number;
  readonly address?: string;
  readonly lastSeen: number;
  readonly startedAt: number;
}

export interface PendRecord extends PendView {
  readonly adoptedBy: string;
  readonly adoptedAt: number;
  /** The run's RunRecord as JSON, so that whichever host takes the pend can activate it. */
  readonly record: string;
}

export interface Assignment {
  readonly run: string;
  readonly host: string;
  readonly flowKey: string;
  readonly resources: readonly string[];
  readonly concurrency?: number;
}

export interface Claimed {
  readonly run: string;
  /** Fencing token: writes for this run are accepted only with it. */
  readonly token: number;
  readonly record: string;
}

/** A run a host holds, as it registers it again after a failover. */
export interface HeldRun {
  readonly run: string;
  readonly token: number;
  readonly flowKey: string;
  readonly resources: readonly string[];
  /** Its RunRecord JSON, kept for a requeue if the state lost it. */
  readonly record: string;
}

export interface Resynced {
  readonly restored: readonly string[];
  readonly lost: readonly string[];
  /** Lost claims whose resources another run holds while hosts still register: ask again. */
  readonly blocked: readonly string[];
  readonly unnamed: readonly { readonly run: string; readonly token: number }[];
}

export interface ActiveEntry {
  readonly run: string;
  readonly host: string;
  readonly token: number;
  readonly flowKey: string;
  readonly resources: readonly string[];
}

/** A live host as a snapshot has it: its tags (in any order) and slots, not its whole record. */
export type SnapshotHost = Pick<HostRecord, "name" | "tags" | "slots">;

export interface Snapshot {
  /** The state's version: it changes with every change a dispatch decision depends on. */
  readonly version: number;
  readonly pends: readonly PendRecord[];
  /** Live hosts only (their lease has not lapsed): what dispatch reads of them. */
  readonly hosts: readonly SnapshotHost[];
  /** How many hosts are live; with skipIfEmpty's answer too, which lists none (a dispatcher's safety passes go by it). */
  readonly liveHosts: number;
  /**
   * When each live host's lease ends, on the state's clock — or a time before it (the Redis
   * state gives every live host the earliest live lease end, rather than each one's).
   */
  readonly leaseEnds: ReadonlyMap<string, number>;
  readonly held: ReadonlyMap<string, string>;
  readonly activeByFlow: ReadonlyMap<string, number>;
  readonly runningByHost: ReadonlyMap<string, number>;
  /** Resources some pend is parked on (ParkRequest "resource"). */
  readonly parkedOn: ReadonlySet<string>;
  /** The host-tag sets of pends parked for a slot (ParkRequest "slots"), each once, tags in any order. */
  readonly parkedForSlots: readonly (readonly string[])[];
}

/** A run summary in the shared index: its JSON, and what queries filter on. */
export interface IndexedRun {
  readonly run: string;
  readonly flow: string;
  readonly state: "pending" | "active" | "archived";
  readonly json: string;
}

/** One write of the run index: a run's summary, or a node's status in a run. */
export type IndexWrite = ({ readonly kind: "run" } & IndexedRun) | { readonly kind: "node"; readonly run: string; readonly node: string; readonly json: string };

/**
 * How long a wake-up stands (ClusterState.wake): a host woken for a pend that has not taken it
 * by then (it died, or a claim of another got in first and it decided otherwise) may be
 * replaced by another wake-up for it.
 */
export const WAKE_STANDS_MS = 2000;

export interface Released {
  readonly released: boolean;
  /**
   * The pends on the shared list after the release that no host was woken for within
   * WAKE_STANDS_MS (those its end brought back from parking included, parked ones not) —
   * or whose stand is the releasing host's own: its pass may have left them waiting already
   * (it adopted them when it had a slot, and gave the slot to an older pend), and no other
   * host looks at them.
   */
  readonly unattended: number;
  /** Index writes that came with it and were refused (indexBatch's). */
  readonly refused: readonly { readonly run: string; readonly why: string }[];
}

export interface IndexQuery {
  readonly flow?: string;
  readonly state?: "pending" | "active" | "archived";
  readonly before?: string;
  readonly limit: number;
}

export interface ClusterState {
  /**
   * Registers or renews this host's lease. "expired" means the lease had lapsed before
   * this renewal (the host was presumed dead and its runs may have been taken away).
   * The host's runs are not reaped before `marginMs` after its lease ended (see
   * hub/lease.ts: by then a host cut off has stopped their tasks).
   */
  heartbeat(h: HostRecord, leaseMs: number, marginMs?: number): Promise<"new" | "renewed" | "expired">;
  /**
   * From now on every heartbeat also reads `key` (setValue's), in the same request, and
   * valueAtHeartbeat(key) answers it as of the last heartbeat that came back: a value a host
   * looks at every second (on-update's publish mark) costs no request of its own. One key at
   * a time (the last one followed).
   */
  followValue(key: string): void;
  /** `key`'s value as the last heartbeat read it (followValue): `value` undefined when unset; undefined when no heartbeat has read it yet. */
  valueAtHeartbeat(key: string): { readonly value: string | undefined } | undefined;
  /**
   * How many hosts the registry held, live or not, as the last heartbeat that came back read
   * it (in the same request); undefined before one. A host spreads its ticks by it (hub/tick-phase.ts).
   */
  hostsAtHeartbeat(): number | undefined;
  /** One round trip to the state, changing nothing (a host that stood down probes with it). */
  ping(): Promise<void>;
  removeHost(name: string): Promise<void>;
  /** Every host seen, live or not, with whether its lease is current. */
  hosts(): Promise<{ host: HostRecord; up: boolean }[]>;

  /**
   * Puts a run on the pending list. Every run has a phase in the shared state (pending,
   * active, done, reaped), so that a pend is never put back once it moved on:
   * - "new": a run just adopted (its id is new);
   * - "recover": a pend found on disk after a restart; added only when the cluster has it
   *   pending still (then it is not doubled) or has never heard of it; false when it was
   *   taken, ended or reaped meanwhile, and the caller drops its copy;
   * - "requeue": a run reaped from a lost host (reapDead) goes back as a new attempt; false
   *   unless the run is in phase reaped.
   * A pend this call adds with a record (not "") makes it the run's record (getRecord), in
   * the same step. The adoption counts as `p.adoptedBy`'s wake-up for it (see wake): that
   * host looks at once anyway, so another host's pass does not wake it again for it within
   * WAKE_STANDS_MS. `index`: the new run's first writes of the run index, applied with the
   * pend only if it is added — one round trip for both. Returns whether the run is on the
   * pending list now.
   */
  addPend(p: PendRecord, how?: PendHow, index?: readonly IndexWrite[]): Promise<boolean>;
  /**
   * A new run's pend (addPend(p, "new", index)) — or, when a dispatch pass over the state with
   * it on the list would give it to `p.adoptedBy` now, the run taken by that host in the same
   * step instead ("sync match": no pass, no claim of its own, no wake-up). That is when the
   * host is live with the run's tags and a free slot, no live host with the tags has more
   * free slots, the run's resources are free with no pend parked on them, its flow's
   * concurrency allows it with none of the flow's pends parked, no parked tag set is one the
   * host has, and no pend is on the scanned list before it — or the run needs no resource,
   * has no concurrency limit, and the host has more free slots than pends are listed (no
   * older pend can lose a slot or its turn to it). Where the state cannot tell cheaply (many
   * hosts with more slots), it adds the pend and the pass decides. Returns the claim
   * (the caller activates it, as a claim's), or undefined when the pend was added instead.
   * Its answer is not lost with a connection (as claim's).
   */
  addPendTaking(p: PendRecord, index?: readonly IndexWrite[]): Promise<Claimed | undefined>;
  /** True when it was there (and is now gone; the run is done). */
  removePend(run: string): Promise<boolean>;
  /**
   * The pending list (parked pends aside) and what dispatch needs, in one consistent read;
   * undefined when the state's version is still `since` (nothing a decision depends on
   * changed), so a host that looked a moment ago pays one small round trip.
   */
  snapshot(since?: number, o?: SnapshotOptions): Promise<Snapshot | undefined>;
  /**
   * Parks pends on what blocks them: they leave the pending list that snapshots scan and
   * wait, in their place, until that changes — a host with their tags joins (its heartbeat
   * brings them back); the resource is released (its oldest parked pend comes back); a run
   * of the flow ends under its concurrency limit (its oldest comes back); a slot frees on a
   * live host with their tags ("slots": a run's release brings back the oldest pend parked
   * for a slot that the releasing host can run, and a host joining or given more slots as
   * many as it has free). A pend whose blocker is gone by then is not parked ("slots": a
   * live host with its tags has a free slot). Returns how many were parked.
   */
  park(pends: readonly ParkRequest[]): Promise<number>;
  /**
   * Brings back the head of each queue named (ParkedHead) — if it is older than `before`
   * (the pend on the list a decision kept the resource for, or the oldest it gave a host with
   * those tags), when given: a decision found the resource free, or a host that could run the
   * queue's pends with a slot to spare or given to a younger pend, so the next in line must
   * be looked at (the pend a release brought back could not start for another reason).
   * Returns how many came back.
   */
  unparkHeads(heads: readonly ParkedHead[]): Promise<number>;
  /**
   * Takes the pends atomically, each only if it is still pending, its resources are free,
   * its host is live with a free slot and its flow's concurrency allows it. Returns those
   * taken, with fencing tokens.
   */
  claim(assignments: readonly Assignment[]): Promise<Claimed[]>;
  /**
   * Re-takes resources and a slot for a run this host was executing before it restarted,
   * with a new token. Undefined when the run is no longer this host's (its lease lapsed and
   * it was reaped, or it ended): the caller must not resume it.
   */
  hold(a: Assignment): Promise<number | undefined>;
  /**
   * Wakes the dispatcher of the host a pass decided should start each pend (hub/dispatcher.ts),
   * once per pend: not again for a pend a host was woken for within `standMs`, nor for one no
   * longer on the list — unless `by`, the host whose pass wakes, is the host woken for it: it
   * looked and gave the pend to another host (it filled up meanwhile), which is woken at once.
   * Only the woken host passes a pend on: passes of other hosts, over states older or newer,
   * would wake hosts back and forth. Wake-ups coalesce: a host woken twice before it looks passes once or
   * twice, never once per wake. Only the hosts named are woken, so a pend costs a pass of the
   * host that adopted it and one of the host that takes it, whatever the cluster's size.
   * Returns how many hosts were woken.
   */
  wake(forPends: readonly { readonly run: string; readonly host: string }[], standMs: number, by?: string): Promise<number>;
  /**
   * Waits until `host` is woken (true), or `ms` passed or `signal` aborted (false). A wake
   * sent while nobody waited is not lost: the next wait returns at once. In Redis, a
   * blocking pop on a list of the host's own, on a connection of its own.
   */
  waitWake(host: string, ms: number, signal: AbortSignal): Promise<boolean>;
  /**
   * Frees what an active run held, only if `token` is still its token: the commit point of
   * the run's end. True also for a repeat of a release that was applied (its reply lost).
   */
  release(run: string, token: number, o?: { readonly registering?: boolean }): Promise<boolean>;
  /**
   * release(), telling also how many pends on the shared list after it no host is about to
   * take (Released.unattended): with none, a pass of the releasing host would start nothing
   * that a woken host is not starting already, and it need not make one (a round trip per
   * run saved; a list of more than 64 is counted whole). `index`: the run's last writes of
   * the run index, applied with the release only if it is released (as indexBatch would;
   * `refused` as its) — one round trip for both.
   */
  releaseCounted(run: string, token: number, index?: readonly IndexWrite[]): Promise<Released>;
  /** Who released the run, for a while after (an hour on Redis); undefined when unknown. */
  releasedBy(run: string): Promise<{ host: string; token: number } | undefined>;
  /** Whether `token` is still the run's token (a host that was cut off checks before writing). */
  isCurrent(run: string, token: number): Promise<boolean>;
  /**
   * Active runs whose host's lease lapsed more than its margin ago: removed from the active set and their resources
   * released, atomically, each returned to exactly one caller. `ifDue`: a host's periodic
   * call, which a state may answer with nothing, without asking, when it knows that no host's
   * runs can be reaped yet (the Redis state: from the earliest reap time its last heartbeat
   * read; it still reaps now and then, for pruning).
   */
  reapDead(o?: { readonly ifDue?: boolean }): Promise<ActiveEntry[]>;
  /**
   * The failover epoch of the state's primary (Redis Sentinel): it grows with every failover.
   * Absent, or 0, where the state cannot fail over to a copy that missed writes.
   */
  failoverEpoch?(): Promise<number>;
  /**
   * After a failover (hub/failover.ts): this host's runs registered again, those whose claim
   * the new primary lost taken back with the same token where nobody else took their
   * resources (`blocked` while another run holds them and hosts still register: ask again);
   * `lost` are no longer this host's; `unnamed` are runs the state still has
   * active on this host that it did not name (their end was lost).
   */
  resync?(host: string, runs: readonly HeldRun[]): Promise<Resynced>;
  /**
   * This host has registered its runs at `epoch`: until then, after a failover, isCurrent,
   * release (but one made `registering`) and releasedBy fail as unavailable — a lost claim
   * must not be taken for a takeover.
   */
  registered?(epoch: number): void;

  /** The cluster-wide run index. */
  indexRun(r: IndexedRun): Promise<void>;
  indexNode(run: string, node: string, json: string): Promise<void>;
  /**
   * Writes applied in order, as indexRun and indexNode one after the other would, in one
   * step (in Redis one script: hub/index-mirror.ts sends a host's writes in batches). A write
   * the index refuses (a run under another flow than it was indexed with) is skipped and
   * named in `refused`; the others apply. On failure (the state away) none or all applied.
   */
  indexBatch(writes: readonly IndexWrite[]): Promise<{ readonly refused: readonly { readonly run: string; readonly why: string }[] }>;
  getRun(run: string): Promise<{ json: string; nodes: Record<string, string> } | undefined>;
  listRuns(q: IndexQuery): Promise<string[]>;
  /** How many runs of a flow the index holds in each state (without reading them). */
  countRuns(flow: string): Promise<Record<"pending" | "active" | "archived", number>>;
  /** The RunRecord JSON of a run (addPend keeps it), while it is pending or active: for requeue after a host loss. */
  getRecord(run: string): Promise<string | undefined>;
  /** Where each run is in the shared state (undefined: never heard of, or forgotten), in one read. */
  phases(runs: readonly string[]): Promise<(RunPhase | undefined)[]>;

  /** True for exactly one caller per key within `ttlMs` (timers and polls fire once per cluster). */
  claimTick(key: string, ttlMs: number): Promise<boolean>;
  /** Small shared values (trigger baselines, last fires). */
  getValue(key: string): Promise<string | undefined>;
  setValue(key: string, value: string): Promise<void>;
  /** Forgets a value (absent: nothing happens). */
  deleteValue(key: string): Promise<void>;

  close(): Promise<void>;
}
