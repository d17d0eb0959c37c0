/**
 * Spawning a task's process: one process group per task, output read line by line from
 * separate stdout/stderr pipes, and a kill path that always ends (floe deadlocked on long
 * lines, leaked its reader on start failures and never killed anything: reference §9.6-7,
 * §9.11).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, constants, fstatSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import type { Readable } from "node:stream";
import type { TaskLine } from "./contract.js";
import { errorCode, errorMessage } from "../flows/errors.js";
import { now } from "../store/clock.js";

export interface SpawnOptions {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /** The complete environment of the child (nothing is inherited implicitly). */
  readonly env: NodeJS.ProcessEnv;
  /** Abort → SIGTERM to the whole process group, SIGKILL after `killGraceMs`. */
  readonly signal: AbortSignal;
  readonly onLine: (line: TaskLine) => void;
  readonly onStart?: (info: { pid: number; pgid: number }) => void;
  /** @defaultValue 3000 */
  readonly killGraceMs?: number;
  /**
   * A file created empty (mode 0600, must not exist) right before the process starts, and
   * read and removed once it ended: its text is the result's `output` (a task's
   * `$FLOE_OUTPUT`). Done here, with sync calls, because this runs in the spawn helper
   * (unless FLOE_SPAWN=inline): six fs round trips per task off the host's event loop.
   */
  readonly outputFile?: string;
}

export interface SpawnResult {
  /** Exit status; -1 when killed by a signal or by our abort. 127/126 when it could not start. */
  readonly status: number;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  readonly error?: string;
  /** Why it ended badly: the abort reason, or "killed by SIGx" for a signal not from us. */
  readonly reason?: string;
  /** The text of `outputFile` when the process ended ("" if the task removed it). */
  readonly output?: string;
  /** The errno code when `outputFile` could not be created (the process was not started). */
  readonly outputFileCode?: string;
}

/**
 * How long output pipes may stay open after the group leader exited. A backgrounded
 * grandchild (`server &`) inherits the pipes; without this the task would never end.
 */
const DRAIN_MS = 1000;
/** After SIGKILL, how long to wait for pipes held by something outside the group. */
const LAST_RESORT_MS = 1000;

/** Signal a whole process group. False when it no longer exists. Never signals our own group. */
export function killGroup(pgid: number, sig: NodeJS.Signals): boolean {
  // -0 is our own group and -1 is every process we may signal: refuse both.
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Why a task was aborted, in words, from its signal's reason. */
export function abortMessage(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name !== "AbortError") return r.message;
  if (typeof r === "string" && r !== "") return r;
  return "cancelled";
}

/**
 * Splits one stream into lines. Chunks are decoded with a StringDecoder so a multibyte
 * character cut between two chunks survives; a partial line is kept as a list of pieces
 * (no quadratic concatenation on a 1 MiB line) until its `\n` or EOF arrives.
 */
function lineReader(stream: Readable, name: "out" | "err", emit: (l: TaskLine) => void): () => void {
  const decoder = new StringDecoder("utf8");
  let pieces: string[] = [];
  const push = (text: string): void => {
    emit({ at: now(), text: text.endsWith("\r") ? text.slice(0, -1) : text, stream: name });
  };
  const take = (s: string): void => {
    let start = 0;
    for (let nl = s.indexOf("\n"); nl !== -1; nl = s.indexOf("\n", start)) {
      const tail = s.slice(start, nl);
      if (pieces.length > 0) {
        pieces.push(tail);
        push(pieces.join(""));
        pieces = [];
      } else {
        push(tail);
      }
      start = nl + 1;
    }
    if (start < s.length) pieces.push(s.slice(start));
  };
  stream.on("data", (chunk: Buffer) => take(decoder.write(chunk)));
  // Flush: whatever the decoder held (an incomplete character) and the unterminated last line.
  return () => {
    take(decoder.end());
    if (pieces.length > 0) push(pieces.join(""));
    pieces = [];
  };
}

export function spawnLogged(o: SpawnOptions): Promise<SpawnResult> {
  const grace = o.killGraceMs ?? 3000;
  if (o.signal.aborted) {
    return Promise.resolve({ status: -1, signal: null, reason: abortMessage(o.signal) });
  }
  const outputFile = o.outputFile;
  if (outputFile !== undefined) {
    try {
      closeSync(openSync(outputFile, "wx", 0o600));
    } catch (e: unknown) {
      const code = errorCode(e);
      return Promise.resolve({ status: 126, signal: null, error: `can not create the outputs file ${outputFile}: ${errorMessage(e)}`, ...(code !== undefined ? { outputFileCode: code } : {}) });
    }
  }
  return new Promise<SpawnResult>((resolveSpawn) => {
    const resolve = outputFile === undefined ? resolveSpawn : (r: SpawnResult): void => resolveSpawn({ ...r, output: takeOutput(outputFile) });
    let child: ChildProcess;
    try {
      child = spawn(o.cmd, [...o.args], {
        cwd: o.cwd,
        env: o.env,
        detached: true, // setsid(): the child leads a new group we can kill as a whole
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e: unknown) {
      // Synchronous failures are argument problems (e.g. a NUL byte in an argument).
      resolve({ status: 126, signal: null, error: `${o.cmd}: ${errorMessage(e)}` });
      return;
    }
    const pid = child.pid;
    const { stdout, stderr } = child;
    if (pid === undefined || stdout === null || stderr === null) {
      // Start failed; the reason arrives as an 'error' event.
      child.once("error", (e: NodeJS.ErrnoException) => {
        stdout?.destroy();
        stderr?.destroy();
        resolve(startError(o.cmd, o.cwd, e));
      });
      return;
    }
    const pgid = pid;
    o.onStart?.({ pid, pgid });

    let exit: { code: number | null; sig: NodeJS.Signals | null } | undefined;
    let aborted = false;
    let openPipes = 2;
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const later = (ms: number, f: () => void): void => {
      timers.push(setTimeout(f, ms));
    };
    const sys = (text: string): void => o.onLine({ at: now(), text, stream: "sys" });

    // SIGTERM now, SIGKILL after the grace, and if pipes are held by a process outside the
    // group even then, stop reading them: the task must end.
    const killAll = (): void => {
      killGroup(pgid, "SIGTERM");
      later(grace, () => {
        killGroup(pgid, "SIGKILL");
        later(LAST_RESORT_MS, () => {
          if (done) return;
          sys("output pipes still open after SIGKILL (held outside the process group); closing them");
          stdout.destroy();
          stderr.destroy();
        });
      });
    };
    const onAbort = (): void => {
      if (aborted || done) return;
      aborted = true;
      killAll();
    };

    const finish = (): void => {
      if (done || exit === undefined || openPipes > 0) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      o.signal.removeEventListener("abort", onAbort);
      // On abort the whole group goes, even members that outlived the leader quietly.
      if (aborted) killGroup(pgid, "SIGKILL");
      const reason = aborted ? abortMessage(o.signal) : exit.sig !== null ? `killed by ${exit.sig}` : undefined;
      // A task we killed never reports its trap handler's exit code: it was killed.
      const status = aborted || exit.code === null ? -1 : exit.code;
      resolve(reason === undefined ? { status, signal: exit.sig } : { status, signal: exit.sig, reason });
    };

    for (const [stream, name] of [[stdout, "out"], [stderr, "err"]] as const) {
      const flush = lineReader(stream, name, o.onLine);
      stream.once("close", () => {
        flush();
        openPipes--;
        finish();
      });
      stream.on("error", () => undefined); // a read error ends in 'close' too
    }
    child.on("error", () => undefined); // e.g. a failed kill; the exit path still runs
    child.once("exit", (code, sig) => {
      exit = { code, sig };
      if (openPipes > 0 && !aborted) {
        later(DRAIN_MS, () => {
          if (done || aborted) return;
          sys("process exited but its background children keep the output open; killing its process group");
          killAll();
        });
      }
      finish();
    });
    o.signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Reads and removes a task's outputs file; a task may have removed it itself. */
function takeOutput(file: string): string {
  let text = "";
  try {
    // Non-blocking, and only a regular file: a FIFO put in its place must not stall the helper.
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      if (fstatSync(fd).isFile()) text = readFileSync(fd, "utf8");
    } finally {
      closeSync(fd);
    }
  } catch {
    // gone (removed by the task): no outputs
  }
  rmSync(file, { force: true });
  return text;
}

function startError(cmd: string, cwd: string, e: NodeJS.ErrnoException): SpawnResult {
  if (e.code === "ENOENT") {
    // libuv reports a missing cwd as ENOENT of the command; say which it was.
    return { status: 127, signal: null, error: cwdMissing(cwd) ? `${cwd}: no such directory` : `${cmd}: command not found` };
  }
  if (e.code === "EACCES") return { status: 126, signal: null, error: `${cmd}: permission denied` };
  return { status: 126, signal: null, error: `${cmd}: ${e.message}` };
}

function cwdMissing(cwd: string): boolean {
  try {
    return !statSync(cwd).isDirectory();
  } catch {
    return true;
  }
}
