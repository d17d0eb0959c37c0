/**
 * The messages between a host and its spawn helper (spawner.ts, spawn-helper.ts), checked
 * on arrival: each side is another process, so what comes over the IPC channel is data to
 * validate, not a type to assume. A message that fails is dropped (and said so by the caller).
 */
import type { TaskLine } from "./contract.js";
import type { SpawnOptions, SpawnResult } from "./process.js";

/** What crosses to the helper: the options without functions and signal. */
export type SpawnRequest =
  | { readonly t: "spawn"; readonly id: number; readonly o: Omit<SpawnOptions, "signal" | "onLine" | "onStart"> }
  | { readonly t: "abort"; readonly id: number; readonly reason: string };

export type SpawnerReply =
  | { readonly t: "start"; readonly id: number; readonly pid: number; readonly pgid: number }
  | { readonly t: "lines"; readonly id: number; readonly lines: readonly TaskLine[] }
  | { readonly t: "done"; readonly id: number; readonly result: SpawnResult };

type Obj = Readonly<Record<string, unknown>>;

function isObj(x: unknown): x is Obj {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x);
const isStr = (x: unknown): x is string => typeof x === "string";
const optStr = (x: unknown): x is string | undefined => x === undefined || typeof x === "string";

function isLine(x: unknown): x is TaskLine {
  return isObj(x) && typeof x["at"] === "number" && isStr(x["text"]) && (x["stream"] === "out" || x["stream"] === "err" || x["stream"] === "sys");
}

function result(x: unknown): SpawnResult | undefined {
  if (!isObj(x) || !isInt(x["status"]) || !(x["signal"] === null || isStr(x["signal"]))) return undefined;
  if (!optStr(x["error"]) || !optStr(x["reason"]) || !optStr(x["output"]) || !optStr(x["outputFileCode"])) return undefined;
  const signal = x["signal"] as NodeJS.Signals | null; // any name the OS reports: only shown in words
  return {
    status: x["status"],
    signal,
    ...(x["error"] !== undefined ? { error: x["error"] } : {}),
    ...(x["reason"] !== undefined ? { reason: x["reason"] } : {}),
    ...(x["output"] !== undefined ? { output: x["output"] } : {}),
    ...(x["outputFileCode"] !== undefined ? { outputFileCode: x["outputFileCode"] } : {}),
  };
}

/** A reply from the helper, checked; undefined when it is not one. */
export function parseSpawnerReply(x: unknown): SpawnerReply | undefined {
  if (!isObj(x) || !isInt(x["id"])) return undefined;
  const id = x["id"];
  switch (x["t"]) {
    case "start":
      return isInt(x["pid"]) && isInt(x["pgid"]) ? { t: "start", id, pid: x["pid"], pgid: x["pgid"] } : undefined;
    case "lines": {
      const lines = x["lines"];
      return Array.isArray(lines) && lines.every(isLine) ? { t: "lines", id, lines } : undefined;
    }
    case "done": {
      const r = result(x["result"]);
      return r === undefined ? undefined : { t: "done", id, result: r };
    }
    default:
      return undefined;
  }
}

/** A request from the host, checked; undefined when it is not one. */
export function parseSpawnRequest(x: unknown): SpawnRequest | undefined {
  if (!isObj(x) || !isInt(x["id"])) return undefined;
  const id = x["id"];
  if (x["t"] === "abort") return isStr(x["reason"]) ? { t: "abort", id, reason: x["reason"] } : undefined;
  if (x["t"] !== "spawn") return undefined;
  const o = x["o"];
  if (!isObj(o) || !isStr(o["cmd"]) || !isStr(o["cwd"]) || !Array.isArray(o["args"]) || !o["args"].every(isStr)) return undefined;
  const env = o["env"];
  if (!isObj(env) || !Object.values(env).every((v) => v === undefined || isStr(v))) return undefined;
  if (!(o["killGraceMs"] === undefined || typeof o["killGraceMs"] === "number") || !optStr(o["outputFile"])) return undefined;
  return {
    t: "spawn",
    id,
    o: {
      cmd: o["cmd"],
      args: o["args"],
      cwd: o["cwd"],
      env: { ...env } as NodeJS.ProcessEnv, // checked above: strings only
      ...(typeof o["killGraceMs"] === "number" ? { killGraceMs: o["killGraceMs"] } : {}),
      ...(typeof o["outputFile"] === "string" ? { outputFile: o["outputFile"] } : {}),
    },
  };
}
