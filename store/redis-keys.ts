/**
 * The only place that builds Redis keys (as BullMQ's queue-keys.ts). Every key of a cluster
 * lives under `floe:{<cluster>}:`: the braces are a Redis Cluster hash tag, so all of a
 * cluster's keys fall in one hash slot and the multi-key Lua scripts run unchanged on Redis
 * Cluster and on managed services in cluster mode (one node serves a cluster's keys; more
 * floe clusters spread over the nodes). Keys of versions before the tag (`floe:<cluster>:`)
 * are not read: see README "Scaling out" for the upgrade. The cluster state keeps its tables in a fixed set of keys
 * (hashes and sorted sets whose fields and members are the raw ids), so its Lua scripts
 * never build a key. Per-id keys exist only where Redis needs one key per thing: a run's
 * node statuses, a tick's expiry, a shared value, a login session.
 *
 * Every user-supplied part goes through `keyPart`, whose output never holds `:`, so no
 * flow id, run id, host name, value key or cluster name can reach into another key.
 */
import { DEFAULT_CLUSTER } from "./cluster-name.js";
import { idEscaper } from "./id-escape.js";

/**
 * One key part for any string (store/id-escape.ts), injective and at most 200 characters
 * (longer ones keep 64 and a hash). Never `:` (the key separator), a glob character
 * (`*`, `?`, `[`, `]`, `\`), whitespace or NUL.
 */
export const keyPart = idEscaper({ maxLength: 200, keep: 64, avoid: ":*?[]\\ \t\r\n\0" });

export type IndexState = "pending" | "active" | "archived";

/** The keys of the cluster state's tables, in the order its Lua scripts read them. */
export const STATE_TABLES = [
  "hosts", // hash host → HostRecord JSON
  "leases", // hash host → lease end, Redis server ms
  "slots", // hash host → slots
  "pendSeq", // counter: adoption order
  "pendOrder", // zset run → adoption sequence (FIFO)
  "pendView", // hash run → PendRecord JSON without the record
  "pendRecord", // hash run → the pend's RunRecord JSON
  "active", // hash run → ActiveEntry JSON without the token
  "tokens", // hash run → fencing token
  "held", // hash resource → run
  "running", // hash host → active runs
  "flowActive", // hash flowKey → active runs
  "tokenSeq", // counter: fencing tokens
  "phase", // hash run → pending | active | done | reaped
  "phaseDrop", // zset run → when its done/reaped phase is forgotten (server ms)
  "records", // hash run → RunRecord JSON (addPend)
  "recordDrop", // zset run → when its record is forgotten (server ms)
  "reapAt", // zset host → when its runs may be reaped: lease end + the host's margin (server ms)
  "hostTags", // hash host → its tags, packed (to see a host join with new tags)
  "stateVer", // counter: bumped by every change a dispatch decision depends on
  "parked", // zset run → adoption sequence: parked pends, off the scanned list (their blocker below)
  "parkedTagSets", // hash packed host tags → pends parked because no live host has them
  "parkedTagRuns", // zset, lexical: packed host tags + 20-digit sequence + run, for those pends
  "parkedOn", // hash run → packed {kind (t, r, c, s), key, member of its kind's lexical index}
  "parkedRes", // zset, lexical: packed resource + 20-digit sequence + run, for pends parked on a held resource
  "parkedResCount", // hash resource → pends parked on it
  "parkedConc", // zset, lexical: packed flowKey + 20-digit sequence + run, for pends parked on their flow's concurrency
  "parkedConcCount", // hash flowKey → pends parked on it
  "parkedConcLimit", // hash flowKey → its concurrency limit
  "wokeFor", // hash run → "<server ms> <host>": the host last woken to take it, and when (one wake-up per pend and host)
  "tokenEpoch", // string: the largest failover epoch seen (Sentinel's config-epoch; 0 without Sentinel), the high part of tokens
  "settleUntil", // string: server ms until which, after a failover, nothing is claimed or reaped (hosts register again first)
  "leaseEnd", // zset host → lease end, server ms (the leases hash sorted: who lapsed, and the earliest live end, in O(log hosts))
  "hostVer", // counter: bumped when the registry changes what dispatch reads of it (a host joins, returns, leaves, changes tags or slots)
  "slotRank", // zset host → its slots (who may have more free slots than an adopting host: addPend's take at once)
  "parkedSlotSets", // hash packed host tags → pends parked because every live host with those tags was full
  "parkedSlots", // zset, lexical: packed host tags + 20-digit sequence + run, for those pends
] as const;

export type StateTable = (typeof STATE_TABLES)[number];

export interface RedisKeys {
  readonly cluster: string;
  /** `floe:{<cluster>}:`, what every key starts with (the braces: one hash slot). */
  readonly prefix: string;
  /** The cluster state's tables, in STATE_TABLES order. */
  readonly tables: readonly string[];
  table(name: StateTable): string;
  /** Where a claim or reap keeps its answer for a while, so a retry after a lost reply gets it again. */
  reply(id: string): string;
  /** Run index: run → summary JSON, run → state, run → flow. */
  readonly indexJson: string;
  readonly indexState: string;
  readonly indexFlow: string;
  /** Lexically ordered sets of run ids (ULIDs: newest last). */
  readonly indexAll: string;
  indexByState(state: IndexState): string;
  indexByFlow(flow: string): string;
  indexByFlowState(flow: string, state: IndexState): string;
  /** Runs trimmed from the index whose node hashes are still to be deleted. */
  readonly indexTrash: string;
  /** Hash node id → node status JSON of one run. */
  nodes(run: string): string;
  tick(key: string): string;
  value(key: string): string;
  /** A login session, by the hex SHA-256 of its token. */
  session(tokenHash: string): string;
  /** A host's wake-up list: its dispatcher blocks on it (ClusterState.waitWake). */
  wake(host: string): string;
}

export function redisKeys(cluster: string = DEFAULT_CLUSTER): RedisKeys {
  // keyPart never writes a brace, so the tag ends where the cluster's part does; an empty
  // tag would hash whole keys, so "" gets one that no other name escapes to.
  const prefix = `floe:{${keyPart(cluster) || "%"}}:`;
  const k = (...parts: string[]) => prefix + parts.join(":");
  const tables = STATE_TABLES.map((t) => k("cs", t));
  return Object.freeze({
    cluster,
    prefix,
    tables: Object.freeze(tables),
    table: (name: StateTable) => k("cs", name),
    reply: (id: string) => k("reply", keyPart(id)),
    indexJson: k("idx", "json"),
    indexState: k("idx", "state"),
    indexFlow: k("idx", "flow"),
    indexAll: k("idx", "all"),
    indexByState: (state: IndexState) => k("idx", "s", state),
    indexByFlow: (flow: string) => k("idx", "f", keyPart(flow)),
    indexByFlowState: (flow: string, state: IndexState) => k("idx", "fs", keyPart(flow), state),
    indexTrash: k("idx", "trash"),
    nodes: (run: string) => k("nodes", keyPart(run)),
    tick: (key: string) => k("tick", keyPart(key)),
    value: (key: string) => k("value", keyPart(key)),
    session: (tokenHash: string) => k("session", keyPart(tokenHash)),
    wake: (host: string) => k("wake", keyPart(host)),
  });
}
