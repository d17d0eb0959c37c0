/** Small pieces shared by the built-in task types (git, fetch, timer). */
import path from "node:path";
import type { TaskLine, TaskRequest } from "./contract.js";
import { now } from "../store/clock.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A `sys` line writer for one request. */
export function sysWriter(req: Pick<TaskRequest, "onLine">): (text: string) => void {
  return (text) => req.onLine({ at: now(), text, stream: "sys" } satisfies TaskLine);
}

/** Why a signal was aborted, in words: the hub aborts with an Error saying "timed out after 90s" etc. */
export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name !== "AbortError" && r.message !== "") return r.message;
  if (typeof r === "string" && r !== "") return r;
  return "cancelled";
}

/** An optional string opt: undefined when absent or empty, an error text when not a string. */
export function stringOpt(opts: TaskRequest["opts"], key: string, type: string): string | undefined | { error: string } {
  const v = opts[key];
  if (v === undefined || v === null || v === "") return undefined;
  // YAML reads `branch: 2024` or a numeric hash as a number; they mean their text.
  if (typeof v === "number") return String(v);
  if (typeof v !== "string") return { error: `${type} opts.${key} must be a string` };
  return v;
}

/** `ws/sub`, or an error when `sub` climbs out of the workspace (a leading `/` stays inside, as floe's Join). */
export function insideWorkspace(ws: string, sub: string | undefined, what: string): { path: string } | { error: string } {
  if (sub === undefined) return { path: ws };
  const dir = path.join(ws, sub);
  const rel = path.relative(ws, dir);
  if (rel === ".." || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    return { error: `${what} ${JSON.stringify(sub)} is outside the workspace` };
  }
  return { path: dir };
}

/** The host's environment without FLOE_*, read at most once a second (each read of process.env is a call into C++). */
let hostEnvCache: { at: number; env: NodeJS.ProcessEnv } | undefined;

function hostEnv(): NodeJS.ProcessEnv {
  const now = performance.now();
  if (hostEnvCache === undefined || now - hostEnvCache.at > 1000) {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith("FLOE_")) env[k] = v;
    }
    hostEnvCache = { at: now, env };
  }
  return hostEnvCache.env;
}

/**
 * The environment of a helper process: the host's (minus floe's own FLOE_* settings), then
 * the task's entries in order, later wins. As in exec, a self-reference such as
 * `PATH=./bin:$PATH` takes the previous value, so a flow env that extends PATH does not
 * stop us finding `git`.
 */
export function taskEnv(req: Pick<TaskRequest, "env">): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...hostEnv() };
  for (const entry of req.env) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    const prev = env[key] ?? "";
    env[key] = NAME.test(key)
      ? value.split(`\${${key}}`).join(prev).replace(new RegExp(`\\$${key}(?![A-Za-z0-9_])`, "g"), () => prev)
      : value;
  }
  return env;
}
