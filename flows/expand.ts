/**
 * How options and environments combine and expand, as floe does it (reference §1.6–1.7),
 * with its two bugs fixed: a node's own `env` is appended to the flow's instead of
 * replacing it, and `$VAR` is left for the task's shell, never expanded with the server's
 * environment.
 */
import { mkdtempSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

const WS = "{{ws}}";

/**
 * Workspace expansion of one env entry, exec arg or fetch location: `.` and a leading `./`
 * mean the workspace (but `./...`, Go's package wildcard, is kept), `{{ws}}` is replaced.
 * In `KEY=value` only the value is expanded.
 */
export function expandWs(s: string, ws: string): string {
  const eq = s.indexOf("=");
  if (eq >= 0 && s.indexOf("=", eq + 1) < 0) return s.slice(0, eq + 1) + expandWs(s.slice(eq + 1), ws);
  let v = s;
  if (v === ".") v = WS;
  else if (v.startsWith("./") && !v.startsWith("./...")) v = WS + v.slice(1);
  return replaceWs(v, ws);
}

/** Only `{{ws}}` → the workspace: floe's rule for `cmd` and `shell`. */
export function replaceWs(s: string, ws: string): string {
  return s.replaceAll("/" + WS, WS).replaceAll(WS, ws);
}

function isEnvList(v: unknown): v is unknown[] {
  return Array.isArray(v);
}

/** `r` over `l`: r's keys win, except `env`, whose entries are appended (l's first). */
export function mergeOpts(l: Readonly<Record<string, unknown>> | undefined, r: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(l ?? {}) };
  for (const [k, v] of Object.entries(r ?? {})) {
    if (k === "env" && isEnvList(v) && isEnvList(out[k])) out[k] = [...(out[k] as unknown[]), ...v];
    else out[k] = v;
  }
  return out;
}

/** Env entries of an opts map (`env: [K=v]`), ignoring anything that is not text. */
export function envOf(opts: Readonly<Record<string, unknown>> | undefined): string[] {
  const e = opts?.["env"];
  return Array.isArray(e) ? e.filter((x): x is string => typeof x === "string") : [];
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `from-ref` → `FROM_REF`: the name a value gets when its own name is not a valid variable name. */
export function envName(key: string): string {
  return key.toUpperCase().replace(/[^A-Z0-9_]/g, "_").replace(/^(\d)/, "_$1");
}

/**
 * Trigger and form values, and upstream task outputs, as env entries: each under its own
 * name when that is a valid variable name, and under its upper-snake name (`FROM_REF`).
 * Only scalar values are passed; they are never spliced into a command line.
 */
export function valuesToEnv(values: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (v === null || v === undefined || typeof v === "object" || typeof v === "function") continue;
    const text = String(v);
    if (ENV_NAME.test(k)) out.push(`${k}=${text}`);
    const upper = envName(k);
    if (upper !== k && upper !== "") out.push(`${upper}=${text}`);
  }
  return out;
}

/** floe's path expansion for roots: `~/x` → $HOME/x, `%tmp` → a fresh temp dir. */
export function expandPath(p: string): string {
  if (p.length < 2) throw new Error(`path "${p}" is too short`);
  if (p === "~" || p === "~/") throw new Error(`path "${p}" would be the home directory itself`);
  if (p.startsWith("~/")) return join(homedir(), p.slice(2));
  if (p.startsWith("%tmp")) return join(mkdtempSync(join(tmpdir(), "floe")), p.slice(4));
  return p;
}
