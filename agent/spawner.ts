/**
 * Where tasks' processes are spawned from. A fork blocks the thread that calls it for a
 * few milliseconds (it copies the page tables of the whole host process): on the host's
 * main thread that is time no run, request or event is served. So processes are spawned
 * from one worker thread (spawn-worker.ts), which reads their output and reports back; the
 * main thread only relays. Process groups are unchanged (killGroup works from any thread).
 * `FLOE_SPAWN=inline` spawns on the calling thread instead, as does any failure to start
 * the worker.
 */
import { Worker } from "node:worker_threads";
import type { TaskLine } from "./contract.js";
import { abortMessage, spawnHere, type SpawnOptions, type SpawnResult } from "./process.js";

/** What crosses to the worker: the options without functions and signal. */
export type SpawnRequest =
  | { readonly t: "spawn"; readonly id: number; readonly o: Omit<SpawnOptions, "signal" | "onLine" | "onStart"> }
  | { readonly t: "abort"; readonly id: number; readonly reason: string };

export type SpawnerReply =
  | { readonly t: "start"; readonly id: number; readonly pid: number; readonly pgid: number }
  | { readonly t: "lines"; readonly id: number; readonly lines: readonly TaskLine[] }
  | { readonly t: "done"; readonly id: number; readonly result: SpawnResult };

interface Call {
  readonly o: SpawnOptions;
  readonly resolve: (r: SpawnResult) => void;
  readonly onAbort: () => void;
}

class SpawnerThread {
  private readonly worker: Worker;
  private readonly calls = new Map<number, Call>();
  private seq = 0;
  broken: Error | undefined;

  constructor() {
    // Under the test runner this module is TypeScript, run by a loader the worker inherits.
    const file = import.meta.url.endsWith(".ts") ? "./spawn-worker.ts" : "./spawn-worker.js";
    this.worker = new Worker(new URL(file, import.meta.url));
    this.worker.unref();
    this.worker.on("message", (m: SpawnerReply) => this.reply(m));
    this.worker.on("error", (e) => this.fail(e));
    this.worker.on("exit", (code) => this.fail(new Error(`the spawner thread exited with ${code}`)));
  }

  spawn(o: SpawnOptions): Promise<SpawnResult> {
    const id = ++this.seq;
    return new Promise<SpawnResult>((resolve) => {
      const onAbort = (): void => this.worker.postMessage({ t: "abort", id, reason: abortMessage(o.signal) } satisfies SpawnRequest);
      this.calls.set(id, { o, resolve, onAbort });
      // Running tasks keep the process alive, as their child processes would on the main thread.
      if (this.calls.size === 1) this.worker.ref();
      const { signal: _s, onLine: _l, onStart: _st, ...plain } = o;
      this.worker.postMessage({ t: "spawn", id, o: plain } satisfies SpawnRequest);
      o.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private reply(m: SpawnerReply): void {
    const c = this.calls.get(m.id);
    if (c === undefined) return;
    if (m.t === "start") c.o.onStart?.({ pid: m.pid, pgid: m.pgid });
    else if (m.t === "lines") for (const l of m.lines) c.o.onLine(l);
    else this.end(m.id, c, m.result);
  }

  private end(id: number, c: Call, r: SpawnResult): void {
    this.calls.delete(id);
    c.o.signal.removeEventListener("abort", c.onAbort);
    if (this.calls.size === 0) this.worker.unref();
    c.resolve(r);
  }

  /** The thread is gone: its tasks' ends are unknown; say so and spawn here from now on. */
  private fail(e: Error): void {
    if (this.broken !== undefined) return;
    this.broken = e;
    for (const [id, c] of [...this.calls]) this.end(id, c, { status: 126, signal: null, error: `the spawner thread failed while ${c.o.cmd} ran: ${e.message}` });
  }
}

let thread: SpawnerThread | undefined;

/** Spawns a task's process (see spawnHere for what it does), from the spawner thread. */
export function spawnLogged(o: SpawnOptions): Promise<SpawnResult> {
  if (o.signal.aborted || process.env["FLOE_SPAWN"] === "inline") return spawnHere(o);
  try {
    thread ??= new SpawnerThread();
  } catch {
    return spawnHere(o);
  }
  if (thread.broken !== undefined) return spawnHere(o);
  return thread.spawn(o);
}
