/**
 * RunEvents on the wire: which subject each goes on, and the check every event gets when it
 * arrives from another host or from the JetStream history (version, type and shape; extra
 * fields are kept). A value that passes is deep-frozen; one that fails says why.
 */
import type { Decoded, WireCodec } from "../store/nats-bus.js";
import type { NatsNames } from "../store/nats-subjects.js";
import { assertNever } from "./errors.js";
import type { RunEvent } from "./types.js";

type Obj = Readonly<Record<string, unknown>>;

const RUN_STATES = new Set(["pending", "active", "archived"]);
const RUN_RESULTS = new Set(["good", "bad", "cancelled", "lost"]);
const NODE_STATES = new Set(["waiting", "running", "good", "bad", "skipped", "cancelled"]);
const NODE_CLASSES = new Set(["trigger", "task", "merge"]);
const STREAMS = new Set(["out", "err", "sys"]);

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
  return { subject: (ev) => runEventSubject(names, ev), decode: parseRunEvent };
}

/** Checks a parsed JSON value is a RunEvent of a version this host understands. */
export function parseRunEvent(x: unknown): Decoded<RunEvent> {
  const why = problem(x);
  if (why !== undefined) return { ok: false, why };
  return { ok: true, value: deepFreeze(x) as RunEvent };
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

function refProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return (
    fields(x, { flow: "string", ver: "number", run: "string", adoptedBy: "string" }) ??
    optional(x, { execHost: "string" })
  );
}

function summaryProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return (
    at("ref", refProblem(x["ref"])) ??
    oneOf(x, "state", RUN_STATES) ??
    (x["result"] === undefined ? undefined : oneOf(x, "result", RUN_RESULTS)) ??
    fields(x, { attempt: "number", adoptedAt: "number" }) ??
    optional(x, { reason: "string", waiting: "string", startedAt: "number", endedAt: "number" }) ??
    at("trigger", triggerProblem(x["trigger"]))
  );
}

function triggerProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return fields(x, { id: "string", type: "string" }) ?? (isObj(x["values"]) ? undefined : "values: not an object") ?? optional(x, { by: "string" });
}

function nodeProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return (
    fields(x, { id: "string", name: "string", type: "string", attempts: "number", logLines: "number" }) ??
    oneOf(x, "class", NODE_CLASSES) ??
    oneOf(x, "state", NODE_STATES) ??
    optional(x, { startedAt: "number", endedAt: "number", exitCode: "number", tag: "string", reason: "string", enabled: "boolean" }) ??
    (x["waits"] === undefined || isRecordOf(x["waits"], "boolean") ? undefined : "waits: not a map of booleans") ??
    (x["values"] === undefined || isRecordOf(x["values"], "string") ? undefined : "values: not a map of strings") ??
    (x["fields"] === undefined || Array.isArray(x["fields"]) ? undefined : "fields: not a list")
  );
}

function lineProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return fields(x, { seq: "number", at: "number", text: "string" }) ?? oneOf(x, "stream", STREAMS);
}

type Kind = "string" | "number" | "boolean";

function fields(x: Obj, want: Readonly<Record<string, Kind>>): string | undefined {
  for (const [k, kind] of Object.entries(want)) {
    const v = x[k];
    if (typeof v !== kind || (kind === "number" && !Number.isFinite(v))) return `${k}: not a ${kind}`;
  }
  return undefined;
}

function optional(x: Obj, want: Readonly<Record<string, Kind>>): string | undefined {
  for (const [k, kind] of Object.entries(want)) {
    const v = x[k];
    if (v !== undefined && (typeof v !== kind || (kind === "number" && !Number.isFinite(v)))) return `${k}: not a ${kind}`;
  }
  return undefined;
}

function oneOf(x: Obj, k: string, allowed: ReadonlySet<string>): string | undefined {
  const v = x[k];
  return typeof v === "string" && allowed.has(v) ? undefined : `${k}: not one of ${[...allowed].join(", ")}`;
}

function at(place: string, why: string | undefined): string | undefined {
  return why === undefined ? undefined : `${place}: ${why}`;
}

function isObj(x: unknown): x is Obj {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

function isRecordOf(x: unknown, kind: Kind): boolean {
  return isObj(x) && Object.values(x).every((v) => typeof v === kind);
}

function deepFreeze<T>(x: T): T {
  if (x !== null && typeof x === "object" && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const v of Object.values(x)) deepFreeze(v);
  }
  return x;
}
