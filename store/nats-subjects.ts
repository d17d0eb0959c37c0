/**
 * The only place that builds NATS subjects and JetStream names (as BullMQ's queue-keys.ts is
 * for Redis keys). Everything lives under `floe.<cluster>.`:
 *
 *   floe.<c>.ev.<run>.run              a run's summary events
 *   floe.<c>.ev.<run>.node.<node>      a node's status events
 *   floe.<c>.ev.<run>.log.<node>       a node's output lines (one line, or a batch of them)
 *   floe.<c>.host.<host>.<verb>        requests to one host
 *
 * and the object store bucket of artifacts, FLOE_OBJ_<c>.
 *
 * Every user-supplied part goes through `subjectToken`, so no run id, node id, host or
 * cluster name can add a token, a wildcard or whitespace to a subject.
 */
import { DEFAULT_CLUSTER } from "./cluster-name.js";
import { idEscaper } from "./id-escape.js";

/** The kinds of run events, as they appear in subjects. */
export type EventKind = "run" | "node" | "log";

/**
 * One subject token for any string (store/id-escape.ts), injective and at most 80
 * characters (longer ones keep 40 and a hash). Never `.` (the token separator), a wildcard
 * (`*`, `>`), whitespace or a control character; so it is also a valid JetStream stream or
 * consumer name (which may not hold `/` or `\` either).
 */
export const subjectToken = idEscaper({ maxLength: 80, keep: 40, avoid: ".*>/\\ \t\r\n\0\x7f" });

/** Every subject and name of one cluster, built from its (encoded) name. */
export interface NatsNames {
  readonly cluster: string;
  /** The JetStream stream holding run events and log lines. */
  readonly stream: string;
  /** The JetStream object store bucket holding artifacts (store/nats-objects.ts). */
  readonly objects: string;
  /** Every run event of the cluster: what the stream holds. */
  readonly allEvents: string;
  /** The run-level events of every run: what every host's bus listens to. */
  readonly allRunEvents: string;
  /** The subject of one event. `node` is required for node and log events. */
  event(run: string, kind: EventKind, node?: string): string;
  /** Every event of one run (a filter; what a host watching the run listens to). */
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
    objects: `FLOE_OBJ_${c}`,
    allEvents: `${base}.ev.>`,
    allRunEvents: `${base}.ev.*.run`,
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
