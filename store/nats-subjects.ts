/**
 * The only place that builds NATS subjects and JetStream names (as BullMQ's queue-keys.ts is
 * for Redis keys). Everything lives under `floe.<cluster>.`:
 *
 *   floe.<c>.ev.<run>.run              a run's summary events
 *   floe.<c>.ev.<run>.node.<node>      a node's status events
 *   floe.<c>.ev.<run>.log.<node>       a node's output lines
 *   floe.<c>.host.<host>.<verb>        requests to one host
 *
 * Every user-supplied part goes through `subjectToken`, so no run id, node id, host or
 * cluster name can add a token, a wildcard or whitespace to a subject.
 */
import { createHash } from "node:crypto";

/** @defaultValue the cluster name when none is given */
export const DEFAULT_CLUSTER = "floe";

/** The kinds of run events, as they appear in subjects. */
export type EventKind = "run" | "node" | "log";

/** Longest token kept readable; longer ones keep a prefix and a hash. */
const MAX_TOKEN = 80;
const KEEP = 40;
const SAFE = /^[A-Za-z0-9_-]$/;

/**
 * One subject token for any string, injective and within MAX_TOKEN characters:
 * - `[A-Za-z0-9_-]` stay as they are;
 * - any other UTF-16 code unit becomes `%HH` (below 0x100) or `%uHHHH`;
 * - the empty string becomes `%`;
 * - a result longer than MAX_TOKEN becomes its first KEEP characters (never cutting an
 *   escape), `~` and 32 hex digits of the SHA-256 of the raw string. `~` never appears in
 *   an escaped token (it would be `%7E`), so the two forms cannot collide.
 * The output only holds `[A-Za-z0-9_%~-]`: never `.`, `*`, `>`, whitespace or control
 * characters, and it is also a valid JetStream stream or consumer name.
 */
export function subjectToken(raw: string): string {
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
    if (out.length > MAX_TOKEN) break;
  }
  if (out.length <= MAX_TOKEN) return out;
  let cut = KEEP;
  // Back off to the start of an escape cut in half: `%` plus up to 5 characters.
  const pct = out.lastIndexOf("%", cut - 1);
  if (pct !== -1 && cut - pct < (out[pct + 1] === "u" ? 6 : 3)) cut = pct;
  const hash = createHash("sha256").update(raw, "utf16le").digest("hex").slice(0, 32);
  return `${out.slice(0, cut)}~${hash}`;
}

/** Every subject and name of one cluster, built from its (encoded) name. */
export interface NatsNames {
  readonly cluster: string;
  /** The JetStream stream holding run events and log lines. */
  readonly stream: string;
  /** Every run event of the cluster (what the stream holds and the bus listens to). */
  readonly allEvents: string;
  /** The subject of one event. `node` is required for node and log events. */
  event(run: string, kind: EventKind, node?: string): string;
  /** Every event of one run (a filter). */
  runEvents(run: string): string;
  /** The log lines of one node of one run (a filter). */
  nodeLogs(run: string, node: string): string;
  /** Requests to `host` to do `verb`. */
  hostVerb(host: string, verb: string): string;
}

export function natsNames(cluster: string = DEFAULT_CLUSTER): NatsNames {
  const c = subjectToken(cluster);
  const base = `floe.${c}`;
  const ev = (run: string) => `${base}.ev.${subjectToken(run)}`;
  return Object.freeze({
    cluster,
    stream: `FLOE_EV_${c}`,
    allEvents: `${base}.ev.>`,
    event(run: string, kind: EventKind, node?: string) {
      if (kind === "run") return `${ev(run)}.run`;
      if (node === undefined) throw new Error(`a ${kind} event subject needs a node id`);
      return `${ev(run)}.${kind}.${subjectToken(node)}`;
    },
    runEvents: (run: string) => `${ev(run)}.>`,
    nodeLogs: (run: string, node: string) => `${ev(run)}.log.${subjectToken(node)}`,
    hostVerb: (host: string, verb: string) => `${base}.host.${subjectToken(host)}.${subjectToken(verb)}`,
  });
}
