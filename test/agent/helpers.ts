/** Shared helpers for the agent tests (not a test file: tap only runs *.test.ts). */
import { readFileSync } from "node:fs";
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TaskLine, TaskRequest } from "../../agent/contract.js";

/** Polls `cond` every 20 ms until it holds; throws after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether `pid` exists at all, zombies included (`kill(pid, 0)` succeeds). */
export function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is a live process. A zombie counts as gone: it has exited and only waits
 * for whoever reaps it (in some containers PID 1 reaps late).
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export function lines(): { all: TaskLine[]; onLine: (l: TaskLine) => void; texts: (s?: TaskLine["stream"]) => string[] } {
  const all: TaskLine[] = [];
  return {
    all,
    onLine: (l) => all.push(l),
    texts: (s) => all.filter((l) => s === undefined || l.stream === s).map((l) => l.text),
  };
}

/** A fresh workspace directory (real path, so `pwd` output compares equal). */
export async function workspace(t: { teardown: (f: () => Promise<void>) => void }): Promise<string> {
  const ws = await realpath(await mkdtemp(path.join(tmpdir(), "floe-ws-")));
  t.teardown(() => rm(ws, { recursive: true, force: true }));
  return ws;
}

export function request(ws: string, opts: Record<string, unknown>, over: Partial<TaskRequest> = {}): TaskRequest {
  return {
    runId: "01TESTRUN",
    flowId: "build",
    nodeId: "step",
    type: "exec",
    opts,
    env: [],
    workspace: ws,
    cacheDir: path.join(ws, ".cache"),
    signal: new AbortController().signal,
    onLine: () => undefined,
    ...over,
  };
}
