/**
 * Where tasks' processes are spawned from. fork() copies the page tables of the process
 * that calls it, and blocks that process's memory for as long: from a host's main thread
 * (a few hundred MB mapped) that is ≈2.5 ms per task in which no run, request or event is
 * served. So tasks are spawned by a small helper process (spawn-helper.ts) that the host
 * forks once; it reads their output and reports back over IPC. Process groups are the
 * same (the host kills a task's group directly by its pgid).
 *
 * `FLOE_SPAWN=inline` spawns from the host itself, as does a helper that can not start;
 * one that dies fails the tasks it was running (their groups are killed: no one would read
 * them) and is started again for the next ones.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TaskLine } from "./contract.js";
import { parseSpawnerReply, type SpawnerReply, type SpawnRequest } from "./spawn-wire.js";
import { abortMessage, killGroup, spawnLogged as spawnHere, type SpawnOptions, type SpawnResult } from "./process.js";

interface Call {
  readonly o: SpawnOptions;
  /** The task's process group, once started. */
  pgid?: number;
  readonly resolve: (r: SpawnResult) => void;
  readonly onAbort: () => void;
}

/**
 * The helper keeps little alive (a few calls in flight), so a young generation of 1 MB
 * (V8's default lets it grow to 16 MB a half) is plenty: measured over 1,500 spawns of
 * `true`, 8 at a time, its RSS went from 72 to 59 MB, with the same CPU per spawn within
 * the noise (0.97–1.15 against 1.12–1.15 ms). Every fork() it makes copies page tables
 * in proportion to what it has mapped.
 */
const HELPER_V8_FLAGS = ["--max-semi-space-size=1"];

class SpawnHelper {
  private readonly child: ChildProcess;
  private readonly calls = new Map<number, Call>();
  private seq = 0;
  gone = false;

  constructor() {
    // Under the test runner this module is TypeScript, run by loaders the helper needs too.
    const ts = import.meta.url.endsWith(".ts");
    const file = fileURLToPath(new URL(ts ? "./spawn-helper.ts" : "./spawn-helper.js", import.meta.url));
    this.child = fork(file, [], { execArgv: [...(ts ? process.execArgv : []), ...HELPER_V8_FLAGS], stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "json" });
    this.idle();
    this.child.on("message", (m: unknown) => {
      const reply = parseSpawnerReply(m);
      // Not one of ours: dropped (a task it would have belonged to ends when the helper does).
      if (reply !== undefined) this.reply(reply);
    });
    this.child.on("error", (e) => this.lost(e));
    this.child.on("exit", (code, sig) => this.lost(new Error(`the spawn helper exited (${sig ?? code})`)));
  }

  spawn(o: SpawnOptions): Promise<SpawnResult> {
    const id = ++this.seq;
    return new Promise<SpawnResult>((resolve) => {
      const onAbort = (): void => this.send({ t: "abort", id, reason: abortMessage(o.signal) });
      this.calls.set(id, { o, resolve, onAbort });
      if (this.calls.size === 1) this.busy();
      const { signal: _s, onLine: _l, onStart: _st, ...plain } = o;
      this.send({ t: "spawn", id, o: plain });
      o.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private send(m: SpawnRequest): void {
    if (!this.gone && this.child.connected) this.child.send(m);
  }

  /** Running tasks keep the host alive, as child processes of its own would; no task, no hold. */
  private busy(): void {
    this.child.ref();
    this.child.channel?.ref();
  }

  private idle(): void {
    this.child.unref();
    this.child.channel?.unref();
  }

  private reply(m: SpawnerReply): void {
    const c = this.calls.get(m.id);
    if (c === undefined) return;
    if (m.t === "start") {
      c.pgid = m.pgid;
      c.o.onStart?.({ pid: m.pid, pgid: m.pgid });
    }
    else if (m.t === "lines") for (const l of m.lines) c.o.onLine(l);
    else this.end(m.id, c, m.result);
  }

  private end(id: number, c: Call, r: SpawnResult): void {
    this.calls.delete(id);
    c.o.signal.removeEventListener("abort", c.onAbort);
    if (this.calls.size === 0) this.idle();
    c.resolve(r);
  }

  private lost(e: Error): void {
    if (this.gone) return;
    this.gone = true;
    for (const [id, c] of [...this.calls]) {
      // No one reads its output or waits for it any more: it must not run on unseen.
      if (c.pgid !== undefined) killGroup(c.pgid, "SIGKILL");
      this.end(id, c, { status: 126, signal: null, error: `the spawn helper failed while ${c.o.cmd} ran (the task was killed): ${e.message}` });
    }
  }
}

let helper: SpawnHelper | undefined;

/** Spawns a task's process (see process.ts spawnLogged for what that does), from the helper. */
export function spawnLogged(o: SpawnOptions): Promise<SpawnResult> {
  if (o.signal.aborted || process.env["FLOE_SPAWN"] === "inline") return spawnHere(o);
  try {
    if (helper === undefined || helper.gone) helper = new SpawnHelper();
  } catch {
    return spawnHere(o);
  }
  return helper.spawn(o);
}

/**
 * Runs one of the system's programs for the host itself (`rm`, `chattr`), through the
 * helper like a task: from `/`, with only PATH and the C locale, never aborted. Resolves
 * with its exit status and what it printed (stderr and stdout, in order).
 */
export async function runSystemCommand(cmd: string, args: readonly string[]): Promise<{ status: number; error?: string; output: string[] }> {
  const output: string[] = [];
  const r = await spawnLogged({
    cmd,
    args,
    cwd: "/",
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin:/usr/sbin:/sbin", LC_ALL: "C" },
    signal: new AbortController().signal,
    onLine: (l) => output.push(l.text),
  });
  return { status: r.status, ...(r.error !== undefined ? { error: r.error } : {}), output };
}
