/**
 * What is written about a run: run.json (the run's header, replaced atomically) and the
 * append-only status lines of each node. Both are read back after a crash, so both are
 * checked on the way in rather than trusted.
 */
import type { Flow } from "../flows/model.js";
import type { HostName, RunId, RunRef, RunResult, TriggerInfo } from "./types.js";

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
}

/** An event inside a run: its tag, whether it is good, floe-style opts and values for the env. */
export interface RunEventRec {
  readonly tag: string;
  readonly good: boolean;
  /** Opts passed on to listeners (url, branch, hash… from triggers). */
  readonly opts: Readonly<Record<string, unknown>>;
  /** Values that reach listeners as environment variables (outputs, form values). */
  readonly values: Readonly<Record<string, string>>;
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
  | { readonly t: "values"; readonly at: number; readonly values: Readonly<Record<string, string>> }
  | { readonly t: "wait"; readonly at: number; readonly tag: string; readonly event: RunEventRec }
  | { readonly t: "fired"; readonly at: number };

function isObj(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

export function parseRunRecord(x: unknown): RunRecord | undefined {
  if (!isObj(x) || x["v"] !== 1) return undefined;
  const ref = x["ref"];
  const flow = x["flow"];
  const trigger = x["trigger"];
  if (!isObj(ref) || typeof ref["flow"] !== "string" || typeof ref["ver"] !== "number" || typeof ref["run"] !== "string" || typeof ref["adoptedBy"] !== "string") return undefined;
  if (!isObj(flow) || !Array.isArray(flow["tasks"]) || !Array.isArray(flow["triggers"])) return undefined;
  if (!isObj(trigger) || typeof trigger["id"] !== "string") return undefined;
  if (typeof x["adoptedAt"] !== "number" || typeof x["attempt"] !== "number") return undefined;
  if (x["workspace"] !== undefined && typeof x["workspace"] !== "string") return undefined;
  return x as unknown as RunRecord;
}

export function parseStatusLine(x: unknown): StatusLine | undefined {
  if (!isObj(x) || typeof x["t"] !== "string" || typeof x["at"] !== "number") return undefined;
  switch (x["t"]) {
    case "start":
    case "pgid":
    case "retry":
    case "done":
    case "enabled":
    case "values":
    case "wait":
    case "fired":
      return x as unknown as StatusLine;
    default:
      return undefined;
  }
}

export function makeRef(flow: string, ver: number, run: string, adoptedBy: string): RunRef {
  return { flow, ver, run: run as RunId, adoptedBy: adoptedBy as HostName };
}
