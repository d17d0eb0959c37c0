/**
 * The `exec` node type (reference §2 "exec"), with floe's bugs fixed:
 * - neither `cmd` nor `shell` is an error (floe ran `bash -c " "` and called it good, §9.24);
 * - `$VAR` is never expanded with the server's environment (§9.13): `cmd` gets it literally,
 *   `shell` lets bash expand it from the task's own environment;
 * - stdout and stderr are kept apart, lines of any length, and the task can be killed.
 */
import { taskEnv } from "./task-util.js";
import { expandWs, replaceWs } from "../flows/expand.js";
import { mkdirSync, rmSync } from "node:fs";
import { access, constants, mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TaskRequest, TaskResult, TaskRunner } from "./contract.js";
import { parseOutputs } from "./outputs.js";
import type { SpawnResult } from "./process.js";
import { spawnLogged } from "./spawner.js";
import { errorMessage } from "../flows/errors.js";
import { now } from "../store/clock.js";

interface Command {
  readonly file: string;
  readonly args: readonly string[];
}

export const runExec: TaskRunner = async (req) => {
  const sys = (text: string): void => req.onLine({ at: now(), text, stream: "sys" });
  const fail = (error: string, status = 1): TaskResult => {
    sys(error);
    return { status, error, outputs: {} };
  };

  const built = buildCommand(req.opts, req.workspace);
  if (typeof built === "string") return fail(built);
  const dir = workDir(req.opts["sub-dir"], req.workspace);
  if (dir.error !== undefined) return fail(dir.error);
  try {
    // Sync: it exists nearly always, and a thread-pool round trip costs more than the call.
    mkdirSync(dir.path, { recursive: true, mode: 0o700 });
  } catch (e: unknown) {
    return fail(`cannot create ${dir.path}: ${errorMessage(e)}`);
  }

  // The outputs file lives outside the workspace so it never lands in the user's checkout.
  // spawnLogged creates it right before the process and reads and removes it after.
  const name = `${req.runId}.${req.nodeId.replace(/[^A-Za-z0-9_-]/g, "_")}.${++outputsSeq}`;
  const run = async (): Promise<SpawnResult> => {
    const outFile = path.join(await outputsDir(), name);
    const env = execEnv(req, outFile);
    const file = await lookPath(built.file, env["PATH"], req.workspace);
    return spawnLogged({ cmd: file, args: built.args, cwd: dir.path, env, signal: req.signal, onLine: req.onLine, outputFile: outFile, ...(req.onStart ? { onStart: req.onStart } : {}) });
  };
  sys(`in dir: ${dir.path}`);
  sys([built.file, ...built.args].join(" "));
  let r = await run();
  if (r.outputFileCode === "ENOENT") {
    // Its directory was removed behind our back (a tmp cleaner): make a new one, once.
    forgetOutputsDir();
    r = await run();
  }
  if (r.error !== undefined) return fail(r.error, r.status);
  if (r.reason !== undefined) sys(`killed: ${r.reason}`);
  else if (r.status !== 0) sys(`exited with status: ${r.status}`);

  const parsed = parseOutputs(r.output ?? "");
  for (const w of parsed.warnings) sys(w);
  return r.reason === undefined
    ? { status: r.status, outputs: parsed.values }
    : { status: r.status, reason: r.reason, outputs: parsed.values };
};

/**
 * One private directory (0700) per host process for the tasks' outputs files, made on first
 * use and removed at exit: a directory per task would be six more calls.
 */
let dirPromise: Promise<string> | undefined;
let outputsSeq = 0;

function outputsDir(): Promise<string> {
  dirPromise ??= mkdtemp(path.join(tmpdir(), "floe-out-")).then((d) => {
    process.once("exit", () => rmSync(d, { recursive: true, force: true }));
    return d;
  });
  return dirPromise;
}

function forgetOutputsDir(): void {
  dirPromise = undefined;
}

function buildCommand(opts: TaskRequest["opts"], ws: string): Command | string {
  const cmd = opts["cmd"];
  const shell = opts["shell"];
  const rawArgs = opts["args"];
  if (cmd !== undefined && typeof cmd !== "string") return "exec opts.cmd must be a string";
  if (shell !== undefined && typeof shell !== "string") return "exec opts.shell must be a string";
  let args: string[] = [];
  if (rawArgs !== undefined && rawArgs !== null) {
    if (!Array.isArray(rawArgs)) return "exec opts.args must be a list";
    for (const a of rawArgs as unknown[]) {
      // YAML turns `args: [1, true]` into numbers and booleans; they mean their text.
      if (typeof a !== "string" && typeof a !== "number" && typeof a !== "boolean") {
        return "exec opts.args must be a list of strings";
      }
      args.push(expandWs(String(a), ws));
    }
  }
  // `cmd` wins over `shell`, as in floe.
  if (cmd !== undefined && cmd.trim() !== "") {
    const line = replaceWs(cmd.trim(), ws);
    if (args.length > 0) return { file: line, args };
    const words = splitWords(line);
    if (typeof words === "string") return words;
    const [file, ...rest] = words;
    return file === undefined || file === "" ? "exec opts.cmd is empty" : { file, args: rest };
  }
  if (shell !== undefined && shell.trim() !== "") {
    args = [replaceWs(shell, ws), ...args];
    return { file: "bash", args: ["-c", args.join(" ")] };
  }
  return "exec needs opts.cmd or opts.shell";
}

/**
 * Splits a command line into words. floe split on single spaces and honoured no quotes;
 * we split on runs of whitespace and honour simple quotes: '…' and "…" group their content
 * literally (no escapes, no `$` expansion) and join with adjacent text (`a"b c"` → `ab c`).
 * Anything fancier belongs in `shell` or `args`.
 */
export function splitWords(line: string): string[] | string {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (const ch of line) {
    if (quote !== null) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote !== null) return `exec opts.cmd has an unterminated ${quote} quote`;
  if (inWord) words.push(cur);
  return words;
}

/** workspace/sub-dir, refusing anything that climbs out of the workspace. */
function workDir(sub: unknown, ws: string): { path: string; error?: undefined } | { path?: undefined; error: string } {
  if (sub === undefined || sub === null || sub === "") return { path: ws };
  if (typeof sub !== "string") return { error: "exec opts.sub-dir must be a string" };
  // Joined like floe's filepath.Join: a leading `/` is still inside the workspace.
  const dir = path.join(ws, sub);
  const rel = path.relative(ws, dir);
  if (rel === ".." || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    return { error: `exec opts.sub-dir ${JSON.stringify(sub)} is outside the workspace` };
  }
  return { path: dir };
}

/** The helper-process environment (task-util.ts), plus floe's own variables for the task. */
function execEnv(req: TaskRequest, outFile: string): NodeJS.ProcessEnv {
  return {
    ...taskEnv(req),
    FLOEWS: req.workspace,
    FLOE_RUN_ID: req.runId,
    FLOE_FLOW: req.flowId,
    FLOE_NODE: req.nodeId,
    FLOE_OUTPUT: outFile,
    ...(req.host !== undefined ? { FLOE_HOST: req.host } : {}),
    ...(req.attempt !== undefined ? { FLOE_ATTEMPT: String(req.attempt) } : {}),
  };
}

/** Where bare commands were found lately, for PATHs of absolute entries only. */
const found = new Map<string, { path: string; at: number }>();
/** How long a lookup is trusted: a program installed or removed is seen within this. */
const LOOKUP_TTL_MS = 2000;

/**
 * Resolves a bare command on the task's PATH, relative entries against the workspace
 * (floe looked `cmd` up on the env's PATH, reference §2). Not found → the name as given,
 * and the spawn reports "command not found". A PATH of absolute directories is the same
 * for every workspace, so its lookups are remembered for a moment (they are a few calls
 * per directory, on every task).
 */
async function lookPath(file: string, pathVar: string | undefined, ws: string): Promise<string> {
  if (file.includes("/") || pathVar === undefined) return file;
  const dirs = pathVar.split(":");
  const cacheable = dirs.every((d) => path.isAbsolute(d));
  const key = `${pathVar}\0${file}`;
  const hit = cacheable ? found.get(key) : undefined;
  if (hit !== undefined && performance.now() - hit.at < LOOKUP_TTL_MS) return hit.path;
  for (const d of dirs) {
    const candidate = path.resolve(ws, d === "" ? "." : d, file);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) {
        if (cacheable) {
          if (found.size >= 1000) found.clear();
          found.set(key, { path: candidate, at: performance.now() });
        }
        return candidate;
      }
    } catch {
      // not here; try the next entry
    }
  }
  return file;
}
