/**
 * Checks for data that came from another process or from disk (other hosts' events and
 * replies, the shared run index, log files): each says what is wrong with a value, in
 * words, or nothing; the parse functions turn a checked value into its type, never a cast
 * of an unchecked one.
 */
import { FloeError } from "./errors.js";
import { isArtifactList } from "./run-record.js";
import type { LogLine, NodeStatus, RunSummary } from "./types.js";

type Obj = Readonly<Record<string, unknown>>;

const RUN_STATES = new Set(["pending", "active", "archived"]);
const RUN_RESULTS = new Set(["good", "bad", "cancelled", "lost"]);
const NODE_STATES = new Set(["waiting", "running", "good", "bad", "skipped", "cancelled"]);
const NODE_CLASSES = new Set(["trigger", "task", "merge"]);
const STREAMS = new Set(["out", "err", "sys"]);

/** JSON text checked by `problem`; a FloeError E_INTERNAL naming `what` when it is not valid. */
function parseChecked<T>(json: string, problem: (x: unknown) => string | undefined, what: string): T {
  let x: unknown;
  try {
    x = JSON.parse(json);
  } catch (e) {
    throw new FloeError("E_INTERNAL", `${what} is not JSON`, { cause: e });
  }
  return checked<T>(x, problem, what);
}

/** A value checked by `problem`, as its type; a FloeError E_INTERNAL naming `what` when it is not valid. */
export function checked<T>(x: unknown, problem: (x: unknown) => string | undefined, what: string): T {
  const why = problem(x);
  if (why !== undefined) throw new FloeError("E_INTERNAL", `${what} is malformed (${why})`);
  return x as T;
}

/** A run summary kept in the shared run index (it may carry the flow's name). */
export function parseRunSummary(json: string): RunSummary & { readonly name?: string } {
  return parseChecked(json, (x) => summaryProblem(x) ?? (isObj(x) ? optional(x, { name: "string" }) : undefined), "a run summary of the run index");
}

export function parseNodeStatus(json: string): NodeStatus {
  let x: unknown;
  try {
    x = JSON.parse(json);
  } catch (e) {
    throw new FloeError("E_INTERNAL", "a node status of the run index is not JSON", { cause: e });
  }
  return nodeStatusOf(x, "a node status of the run index");
}

/**
 * A node status checked by nodeProblem (a FloeError E_INTERNAL naming `what` if it is not
 * one), with run attempt 1 when it was written before statuses carried their run attempt.
 */
export function nodeStatusOf(x: unknown, what: string): NodeStatus {
  const withAttempt = isObj(x) && x["runAttempt"] === undefined ? { ...x, runAttempt: 1 } : x;
  return checked<NodeStatus>(withAttempt, nodeProblem, what);
}

/**
 * A log line read back (a log file, the history), or undefined if it is not one; a line
 * written before lines carried their run attempt is of `attempt`.
 */
export function parseLogLine(x: unknown, attempt = 1): LogLine | undefined {
  if (lineProblem(x) !== undefined || !isObj(x)) return undefined;
  return checked<LogLine>(x["attempt"] === undefined ? { ...x, attempt } : x, lineProblem, "a log line");
}

export function isNodeStatus(x: unknown): x is NodeStatus {
  return nodeProblem(x) === undefined;
}

export function isRunSummary(x: unknown): x is RunSummary {
  return summaryProblem(x) === undefined;
}

export function refProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return (
    fields(x, { flow: "string", ver: "number", run: "string", adoptedBy: "string" }) ??
    optional(x, { execHost: "string" })
  );
}

export function summaryProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return (
    at("ref", refProblem(x["ref"])) ??
    oneOf(x, "state", RUN_STATES) ??
    (x["result"] === undefined ? undefined : oneOf(x, "result", RUN_RESULTS)) ??
    fields(x, { attempt: "number", adoptedAt: "number" }) ??
    optional(x, { reason: "string", waiting: "string", startedAt: "number", endedAt: "number" }) ??
    at("trigger", triggerProblem(x["trigger"])) ??
    (x["parent"] === undefined ? undefined : at("parent", isObj(x["parent"]) ? fields(x["parent"], { run: "string", node: "string" }) ?? optional(x["parent"], { instance: "number" }) : "not an object")) ??
    (x["outputs"] === undefined || isRecordOf(x["outputs"], "string") ? undefined : "outputs: not a map of strings") ??
    (x["artifacts"] === undefined || isArtifactList(x["artifacts"]) ? undefined : "artifacts: not a list of {name, size, sha256}")
  );
}

function triggerProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return fields(x, { id: "string", type: "string" }) ?? (isObj(x["values"]) ? undefined : "values: not an object") ?? optional(x, { by: "string" });
}

export function nodeProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return (
    fields(x, { id: "string", name: "string", type: "string", attempts: "number", logLines: "number" }) ??
    oneOf(x, "class", NODE_CLASSES) ??
    oneOf(x, "state", NODE_STATES) ??
    optional(x, { runAttempt: "number", startedAt: "number", endedAt: "number", exitCode: "number", tag: "string", reason: "string", enabled: "boolean", by: "string", child: "string" }) ??
    (x["waits"] === undefined || isRecordOf(x["waits"], "boolean") ? undefined : "waits: not a map of booleans") ??
    (x["values"] === undefined || isRecordOf(x["values"], "string") ? undefined : "values: not a map of strings") ??
    // Optional: hosts older than node outputs report none.
    (x["outputs"] === undefined || isRecordOf(x["outputs"], "string") ? undefined : "outputs: not a map of strings") ??
    (x["fields"] === undefined || Array.isArray(x["fields"]) ? undefined : "fields: not a list") ??
    (x["artifacts"] === undefined || isArtifactList(x["artifacts"]) ? undefined : "artifacts: not a list of {name, size, sha256}") ??
    (x["instances"] === undefined || (Array.isArray(x["instances"]) && x["instances"].every(instanceOk)) ? undefined : "instances: not a list of instances")
  );
}

function instanceOk(x: unknown): boolean {
  return isObj(x) && fields(x, { index: "number", item: "string", name: "string" }) === undefined && oneOf(x, "state", NODE_STATES) === undefined && optional(x, { exitCode: "number", reason: "string", startedAt: "number", endedAt: "number", child: "string" }) === undefined;
}

export function lineProblem(x: unknown): string | undefined {
  if (!isObj(x)) return "not an object";
  return fields(x, { seq: "number", at: "number", text: "string" }) ?? optional(x, { attempt: "number", instance: "number" }) ?? oneOf(x, "stream", STREAMS);
}

type Kind = "string" | "number" | "boolean";

export function fields(x: Obj, want: Readonly<Record<string, Kind>>): string | undefined {
  for (const [k, kind] of Object.entries(want)) {
    const v = x[k];
    if (typeof v !== kind || (kind === "number" && !Number.isFinite(v))) return `${k}: not a ${kind}`;
  }
  return undefined;
}

export function optional(x: Obj, want: Readonly<Record<string, Kind>>): string | undefined {
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

export function at(place: string, why: string | undefined): string | undefined {
  return why === undefined ? undefined : `${place}: ${why}`;
}

export function isObj(x: unknown): x is Obj {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

function isRecordOf(x: unknown, kind: Kind): boolean {
  return isObj(x) && Object.values(x).every((v) => typeof v === kind);
}

export function deepFreeze<T>(x: T): T {
  if (x !== null && typeof x === "object" && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const v of Object.values(x)) deepFreeze(v);
  }
  return x;
}
