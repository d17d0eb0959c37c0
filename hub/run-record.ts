/**
 * What is written about a run: run.json (the run's header, replaced atomically) and the
 * append-only status lines of each node. Both are read back after a crash, so both are
 * checked on the way in rather than trusted.
 */
import type { Flow } from "../flows/model.js";
import type { ArtifactRef, HostName, ParentLink, RerunLink, RunId, RunRef, RunResult, TriggerInfo } from "./types.js";
import { now } from "../store/clock.js";

/** Who paused a run and when (hub/pause.ts). */
export interface PauseMark {
  readonly by: string;
  readonly at: number;
}

/**
 * A node of the old run that a re-run does not execute (hub/rerun.ts): its recorded end,
 * replayed into the new run as if it had just happened.
 */
export interface ReplayedNode {
  readonly id: string;
  readonly state: "good" | "bad";
  readonly tag: string;
  readonly exitCode?: number;
  /** Its event's values: a task's outputs, a data node's form values. */
  readonly values: Readonly<Record<string, string>>;
  readonly endedAt: number;
  /** The artifacts it left in the old run: later tasks of the re-run find them under `$FLOE_INPUTS`. */
  readonly artifacts?: readonly ArtifactRef[];
}

export interface RunRecord {
  readonly v: 1;
  readonly ref: RunRef;
  /** The exact flow version this run executes (flow-file already overlaid). */
  readonly flow: Flow;
  readonly trigger: TriggerInfo;
  readonly adoptedAt: number;
  readonly attempt: number;
  readonly startedAt?: number;
  readonly endedAt?: number;
  readonly result?: RunResult;
  readonly reason?: string;
  /**
   * The run's workspace on its executing host, fixed at activation: a reload that moves
   * `workspace-root` must not make an older run's workspace be looked for (or pruned) under
   * the new root.
   */
  readonly workspace?: string;
  /** Set while the run is paused: it survives a restart (run.json) and a requeue (the shared state). */
  readonly paused?: PauseMark;
  /** A re-run: which run, from which node; `replay` holds the old run's nodes it does not execute. */
  readonly rerunOf?: RerunLink;
  readonly replay?: readonly ReplayedNode[];
  /** The re-runs made of this run (kept in its run.json by the host that has it). */
  readonly reruns?: readonly RerunLink[];
  /** The content hash of the flow definition it was adopted with (on-update.ts). */
  readonly def?: string;
  /** Adopted while its flow drained (on-update: drain): held until the runs of older definitions ended. */
  readonly drainFor?: string;
  /** `queue-strategy: debounce`: the pend is held until then, unless a newer trigger replaces it. */
  readonly debounceUntil?: number;
  /** A child run: who started it, and how deep it nests (1: a child of a run that is no child). */
  readonly parent?: ParentLink & { readonly depth: number };
  /** A child run that ended: its tasks' outputs, later ones winning (finisher.ts). */
  readonly outputs?: Readonly<Record<string, string>>;
  /** A child run that ended: its nodes' artifacts, later ones winning (finisher.ts). */
  readonly artifacts?: readonly ArtifactRef[];
  /** A child run: the artifacts its parent handed over, its trigger node's (under `$FLOE_INPUTS/<trigger>/`). */
  readonly inputs?: readonly ArtifactRef[];
}

/** An event inside a run: its tag, whether it is good, floe-style opts and values for the env. */
export interface RunEventRec {
  readonly tag: string;
  readonly good: boolean;
  /** Opts passed on to listeners (url, branch, hash… from triggers). */
  readonly opts: Readonly<Record<string, unknown>>;
  /** Values that reach listeners as environment variables (outputs, form values). */
  readonly values: Readonly<Record<string, string>>;
  /** A task's end: the artifacts it left (hub/task-artifacts.ts), so its listeners and a restart know them. */
  readonly artifacts?: readonly ArtifactRef[];
}

export type StatusLine =
  | { readonly t: "start"; readonly at: number; readonly attempt: number; readonly event: RunEventRec }
  | { readonly t: "pgid"; readonly at: number; readonly pgid: number }
  | { readonly t: "retry"; readonly at: number; readonly attempt: number; readonly delayMs: number; readonly reason: string }
  | {
      readonly t: "done";
      readonly at: number;
      readonly state: "good" | "bad" | "cancelled";
      readonly tag?: string;
      readonly exitCode?: number;
      readonly reason?: string;
      readonly event?: RunEventRec;
    }
  | { readonly t: "enabled"; readonly at: number; readonly event: RunEventRec }
  | { readonly t: "values"; readonly at: number; readonly values: Readonly<Record<string, string>>; readonly by?: string }
  | { readonly t: "wait"; readonly at: number; readonly tag: string; readonly event: RunEventRec }
  | { readonly t: "fired"; readonly at: number }
  /** A for-each instance started (state running) or ended, with what it wrote to $FLOE_OUTPUT. */
  | {
      readonly t: "inst";
      readonly at: number;
      readonly index: number;
      readonly item: string;
      readonly name: string;
      readonly state: "running" | "good" | "bad" | "cancelled";
      readonly exitCode?: number;
      readonly reason?: string;
      readonly outputs?: Readonly<Record<string, string>>;
      /** The artifacts the instance left (the task's artifacts are its instances' together). */
      readonly artifacts?: readonly ArtifactRef[];
    }
  /** A flow task (or its for-each instance) chose its child run's id: recorded durably before the child is adopted, so a restart re-attaches to it. */
  | { readonly t: "child"; readonly at: number; readonly run: string; readonly instance?: number };

function isObj(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

const opt = (x: unknown, type: "string" | "number"): boolean => x === undefined || typeof x === type;
const isStringList = (x: unknown): boolean => Array.isArray(x) && x.every((v) => typeof v === "string");

/** A node of a flow kept with a run: the fields the executor reads, each of its type. */
function isNode(x: unknown): boolean {
  if (!isObj(x) || typeof x["id"] !== "string" || typeof x["name"] !== "string" || typeof x["type"] !== "string" || !isObj(x["opts"])) return false;
  switch (x["class"]) {
    case "trigger":
      return true;
    case "task":
      return typeof x["listen"] === "string" && Array.isArray(x["good"]) && x["good"].every((g) => typeof g === "number") && typeof x["ignoreFail"] === "boolean" && typeof x["useStatus"] === "boolean" && opt(x["timeoutMs"], "number");
    case "merge":
      return isStringList(x["wait"]);
    default:
      return false;
  }
}

/** The flow a run keeps (run.json, the cluster's record of a pend), checked before it is run. */
function isFlow(x: unknown): boolean {
  if (!isObj(x) || typeof x["id"] !== "string" || typeof x["ver"] !== "number" || typeof x["name"] !== "string" || typeof x["reuseSpace"] !== "boolean") return false;
  if (!isStringList(x["hostTags"]) || !isStringList(x["resourceTags"]) || !isStringList(x["env"])) return false;
  if (!opt(x["concurrency"], "number") || !opt(x["queueLimit"], "number") || !opt(x["timeoutMs"], "number")) return false;
  if (typeof x["onHostLoss"] !== "string" || typeof x["queueStrategy"] !== "string") return false;
  const triggers = x["triggers"];
  const tasks = x["tasks"];
  return Array.isArray(triggers) && triggers.every(isNode) && Array.isArray(tasks) && tasks.every(isNode);
}

export function parseRunRecord(x: unknown): RunRecord | undefined {
  if (!isObj(x) || x["v"] !== 1) return undefined;
  const ref = x["ref"];
  const flow = x["flow"];
  const trigger = x["trigger"];
  if (!isObj(ref) || typeof ref["flow"] !== "string" || typeof ref["ver"] !== "number" || typeof ref["run"] !== "string" || typeof ref["adoptedBy"] !== "string") return undefined;
  if (!isFlow(flow)) return undefined;
  if (!isObj(trigger) || typeof trigger["id"] !== "string") return undefined;
  if (typeof x["adoptedAt"] !== "number" || typeof x["attempt"] !== "number") return undefined;
  if (x["workspace"] !== undefined && typeof x["workspace"] !== "string") return undefined;
  if (x["paused"] !== undefined && !(isObj(x["paused"]) && typeof x["paused"]["by"] === "string" && typeof x["paused"]["at"] === "number")) return undefined;
  if (x["replay"] !== undefined && !(Array.isArray(x["replay"]) && x["replay"].every(isReplayed))) return undefined;
  if (x["debounceUntil"] !== undefined && typeof x["debounceUntil"] !== "number") return undefined;
  const p = x["parent"];
  if (p !== undefined && !(isObj(p) && typeof p["run"] === "string" && typeof p["node"] === "string" && typeof p["depth"] === "number" && opt(p["instance"], "number"))) return undefined;
  if (x["outputs"] !== undefined && !isStrings(x["outputs"])) return undefined;
  if ((x["artifacts"] !== undefined && !isArtifactList(x["artifacts"])) || (x["inputs"] !== undefined && !isArtifactList(x["inputs"]))) return undefined;
  return x as unknown as RunRecord; // every field the hub reads checked above
}

function isReplayed(x: unknown): boolean {
  return isObj(x) && typeof x["id"] === "string" && (x["state"] === "good" || x["state"] === "bad") && typeof x["tag"] === "string" && opt(x["exitCode"], "number") && isStrings(x["values"]) && typeof x["endedAt"] === "number" && (x["artifacts"] === undefined || isArtifactList(x["artifacts"]));
}

const SHA256 = /^[0-9a-f]{64}$/;

/** A list of artifacts as recorded: each a plain name, a size and a hash. */
export function isArtifactList(x: unknown): x is readonly ArtifactRef[] {
  return Array.isArray(x) && x.every((a: unknown) => isObj(a) && typeof a["name"] === "string" && a["name"] !== "" && !a["name"].includes("/") && a["name"] !== "." && a["name"] !== ".." && typeof a["size"] === "number" && Number.isSafeInteger(a["size"]) && a["size"] >= 0 && typeof a["sha256"] === "string" && SHA256.test(a["sha256"]));
}

function isEventRec(x: unknown): x is RunEventRec {
  return isObj(x) && typeof x["tag"] === "string" && typeof x["good"] === "boolean" && isObj(x["opts"]) && isStrings(x["values"]) && (x["artifacts"] === undefined || isArtifactList(x["artifacts"]));
}

function isStrings(x: unknown): x is Record<string, string> {
  return isObj(x) && Object.values(x).every((v) => typeof v === "string");
}


/** A status line read back from disk, checked field by field for its kind; undefined if it is not one. */
export function parseStatusLine(x: unknown): StatusLine | undefined {
  if (!isObj(x) || typeof x["t"] !== "string" || typeof x["at"] !== "number") return undefined;
  let ok: boolean;
  switch (x["t"]) {
    case "start":
      ok = typeof x["attempt"] === "number" && isEventRec(x["event"]);
      break;
    case "pgid":
      ok = typeof x["pgid"] === "number";
      break;
    case "retry":
      ok = typeof x["attempt"] === "number" && typeof x["delayMs"] === "number" && typeof x["reason"] === "string";
      break;
    case "done":
      ok = (x["state"] === "good" || x["state"] === "bad" || x["state"] === "cancelled") && opt(x["tag"], "string") && opt(x["exitCode"], "number") && opt(x["reason"], "string") && (x["event"] === undefined || isEventRec(x["event"]));
      break;
    case "enabled":
      ok = isEventRec(x["event"]);
      break;
    case "values":
      ok = isStrings(x["values"]) && opt(x["by"], "string");
      break;
    case "wait":
      ok = typeof x["tag"] === "string" && isEventRec(x["event"]);
      break;
    case "fired":
      ok = true;
      break;
    case "inst":
      ok = typeof x["index"] === "number" && typeof x["item"] === "string" && typeof x["name"] === "string" && ["running", "good", "bad", "cancelled"].includes(x["state"] as string) && opt(x["exitCode"], "number") && opt(x["reason"], "string") && (x["outputs"] === undefined || isStrings(x["outputs"])) && (x["artifacts"] === undefined || isArtifactList(x["artifacts"]));
      break;
    case "child":
      ok = typeof x["run"] === "string" && opt(x["instance"], "number");
      break;
    default:
      ok = false;
  }
  return ok ? (x as unknown as StatusLine) : undefined; // every field of its kind checked above
}

export function makeRef(flow: string, ver: number, run: string, adoptedBy: string): RunRef {
  return { flow, ver, run: run as RunId, adoptedBy: adoptedBy as HostName };
}

/** What activation fixes on a run's record, kept as the first record of its journal. */
export interface Activation {
  readonly t: "active";
  readonly execHost: HostName;
  readonly startedAt: number;
  readonly workspace: string;
}

export function activationOf(r: RunRecord): Activation {
  return { t: "active", execHost: r.ref.execHost as HostName, startedAt: r.startedAt ?? now(), workspace: r.workspace ?? "" };
}

/** A run's record with its activation applied (the last one its journal holds, if any). */
export function withActivation(r: RunRecord, records: readonly unknown[]): RunRecord {
  let a: Activation | undefined;
  for (const x of records) if (isActivation(x)) a = x;
  if (a === undefined) return r;
  return { ...r, ref: { ...r.ref, execHost: a.execHost }, startedAt: a.startedAt, ...(a.workspace !== "" ? { workspace: a.workspace } : {}) };
}

function isActivation(x: unknown): x is Activation {
  return isObj(x) && x["t"] === "active" && typeof x["execHost"] === "string" && x["execHost"] !== "" && typeof x["startedAt"] === "number" && typeof x["workspace"] === "string";
}
