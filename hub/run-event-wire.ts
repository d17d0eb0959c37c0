/**
 * RunEvents on the wire: which subject each goes on, and the check every event gets when it
 * arrives from another host or from the JetStream history (version, type and shape; extra
 * fields are kept). A value that passes is deep-frozen; one that fails says why.
 */
import type { Decoded, WireCodec } from "../store/nats-bus.js";
import type { NatsNames } from "../store/nats-subjects.js";
import { assertNever } from "./errors.js";
import type { RunEvent } from "./types.js";
import { at, deepFreeze, isObj, lineProblem, nodeProblem, refProblem, summaryProblem } from "./wire-checks.js";

/** The subject an event is published on. */
export function runEventSubject(names: NatsNames, ev: RunEvent): string {
  switch (ev.type) {
    case "run":
      return names.event(ev.summary.ref.run, "run");
    case "node":
      return names.event(ev.ref.run, "node", ev.node.id);
    case "log":
      return names.event(ev.ref.run, "log", ev.node);
    default:
      return assertNever(ev);
  }
}

/** The run an event belongs to. */
export function runOf(ev: RunEvent): string {
  return ev.type === "run" ? ev.summary.ref.run : ev.ref.run;
}

export function runEventCodec(names: NatsNames): WireCodec<RunEvent> {
  return { subject: (ev) => runEventSubject(names, ev), decode: parseRunEvent, batchable: (ev) => ev.type === "log" };
}

/** Checks a parsed JSON value is a RunEvent of a version this host understands. */
export function parseRunEvent(x: unknown): Decoded<RunEvent> {
  const why = problem(x);
  if (why !== undefined || !isObj(x)) return { ok: false, why: why ?? "not an object" };
  return { ok: true, value: deepFreeze(withAttempts(x)) as RunEvent };
}

/**
 * Events sent before log lines and node statuses carried their run attempt are of attempt
 * 1 (a run requeued after a host loss is attempt 2 and later).
 */
function withAttempts(x: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const line = x["line"];
  if (x["type"] === "log" && isObj(line) && line["attempt"] === undefined) return { ...x, line: { ...line, attempt: 1 } };
  const node = x["node"];
  if (x["type"] === "node" && isObj(node) && node["runAttempt"] === undefined) return { ...x, node: { ...node, runAttempt: 1 } };
  return x;
}

function problem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  if (x["v"] !== 1) return `unknown version ${JSON.stringify(x["v"])}`;
  switch (x["type"]) {
    case "run":
      return at("summary", summaryProblem(x["summary"]));
    case "node":
      return at("ref", refProblem(x["ref"])) ?? at("node", nodeProblem(x["node"]));
    case "log":
      return at("ref", refProblem(x["ref"])) ?? (typeof x["node"] === "string" ? undefined : "node: not a string") ?? at("line", lineProblem(x["line"]));
    default:
      return `unknown type ${JSON.stringify(x["type"])}`;
  }
}
