/**
 * The only place that builds Redis keys (as BullMQ's queue-keys.ts). Every key of a cluster
 * lives under `floe:<cluster>:`; the cluster state keeps its tables in a fixed set of keys
 * (hashes and sorted sets whose fields and members are the raw ids), so its Lua scripts
 * never build a key. Per-id keys exist only where Redis needs one key per thing: a run's
 * node statuses, a tick's expiry, a shared value, a login session.
 *
 * Every user-supplied part goes through `keyPart`, whose output never holds `:`, so no
 * flow id, run id, host name, value key or cluster name can reach into another key.
 */
import { createHash } from "node:crypto";

/** @defaultValue the cluster name when none is given */
export const DEFAULT_CLUSTER = "floe";

/** Longest key part kept readable; longer ones keep a prefix and a hash. */
const MAX_PART = 200;
const KEEP = 64;
const SAFE = /^[A-Za-z0-9_-]$/;

/**
 * One key part for any string, injective and within MAX_PART characters:
 * - `[A-Za-z0-9_-]` stay as they are;
 * - any other UTF-16 code unit becomes `%HH` (below 0x100) or `%uHHHH`;
 * - the empty string becomes `%`;
 * - a result longer than MAX_PART becomes its first KEEP characters (never cutting an
 *   escape), `~` and 32 hex digits of the SHA-256 of the raw string; `~` never appears in
 *   an escaped part (it would be `%7E`), so the two forms cannot collide.
 * The output only holds `[A-Za-z0-9_%~-]`: never `:`, `*`, `?`, `[`, whitespace or NUL.
 */
export function keyPart(raw: string): string {
  if (raw === "") return "%";
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    const code = raw.charCodeAt(i);
    out += code < 0x100 ? `%${code.toString(16).toUpperCase().padStart(2, "0")}` : `%u${code.toString(16).toUpperCase().padStart(4, "0")}`;
    if (out.length > MAX_PART) break;
  }
  if (out.length <= MAX_PART) return out;
  let cut = KEEP;
  const pct = out.lastIndexOf("%", cut - 1);
  if (pct !== -1 && cut - pct < (out[pct + 1] === "u" ? 6 : 3)) cut = pct;
  const hash = createHash("sha256").update(raw, "utf16le").digest("hex").slice(0, 32);
  return `${out.slice(0, cut)}~${hash}`;
}

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
  "reapAt", // hash host → when its runs may be reaped: lease end + the host's margin (server ms)
] as const;

export type StateTable = (typeof STATE_TABLES)[number];

export interface RedisKeys {
  readonly cluster: string;
  /** `floe:<cluster>:`, what every key starts with. */
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
}

export function redisKeys(cluster: string = DEFAULT_CLUSTER): RedisKeys {
  const prefix = `floe:${keyPart(cluster)}:`;
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
  });
}
