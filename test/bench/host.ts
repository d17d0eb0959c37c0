/**
 * What the host-based measures share: the flows they run, a real `floe serve` process
 * started with test/helpers/floe-process.ts in a temporary root, triggering runs over HTTP
 * with a bounded number of requests in flight, and reading the host from outside (its
 * metrics, its runs, its RSS).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { repoRoot } from "../helpers/paths.js";
import type { CpuTimes } from "./baseline.js";
import { request } from "./client.js";
import { nowMs } from "./stats.js";

/** Three chained exec tasks and an end: the run of measure 1 and 6 (default retention, 200 runs). */
export const CHAIN_TRUE = `
flows:
  - id: chain
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}
      - {name: b, type: exec, listen: task.a.good, opts: {cmd: "true"}}
      - {name: c, type: exec, listen: task.b.good, opts: {cmd: "true"}}
      - {name: done, type: end, listen: task.c.good}
`;

/**
 * The same shape, each task printing the realtime clock in ns as its only action: one
 * process per task, as in CHAIN_TRUE, so a load of these costs what a load of those does.
 * Retention keeps every sampled run so its node times can be read after the load.
 */
export const CHAIN_DATE = `
common: {retention: {runs: 2000}}
flows:
  - id: stamp
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "date +%s%N"}}
      - {name: b, type: exec, listen: task.a.good, opts: {cmd: "date +%s%N"}}
      - {name: c, type: exec, listen: task.b.good, opts: {cmd: "date +%s%N"}}
      - {name: done, type: end, listen: task.c.good}
`;

/** A flow no host can take (no host has tag `gpu`): every run stays a pend. */
export const UNPLACEABLE = `
flows:
  - id: parked
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`;

export interface BenchHost {
  readonly floe: FloeProcess;
  readonly root: string;
  readonly pid: number;
  close(): Promise<void>;
}

export async function startBenchHost(o: { config: string; slots: number; tags?: string[]; env?: Record<string, string> }): Promise<BenchHost> {
  const root = await mkdtemp(join(tmpdir(), "floe-bench-"));
  const conf = join(root, "flows.yml");
  await writeFile(conf, o.config);
  // FLOE_BENCH_CPU_PROF=DIR: the host writes a V8 CPU profile there when it stops (open it in Chrome's DevTools, or test/bench/profile-summary.ts).
  const prof = process.env["FLOE_BENCH_CPU_PROF"];
  const nodeArgs = prof !== undefined && prof !== "" ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
  const floe = await startFloe({ conf, root: join(root, "state"), host: "bench", tags: o.tags ?? [], extra: [`--slots=${o.slots}`], nodeArgs, ...(o.env !== undefined ? { env: o.env } : {}) });
  const pid = floe.child.pid;
  if (pid === undefined) throw new Error("bench: floe has no pid");
  return {
    floe,
    root,
    pid,
    async close() {
      // SIGTERM, then -9 if the stop grace is not kept: the bench must not hang on a host.
      const stopped = floe.stop();
      const t = setTimeout(() => floe.child.kill("SIGKILL"), 10_000);
      await stopped;
      clearTimeout(t);
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface Triggered {
  readonly run: string;
  /** Client wall clock (ms, sub-ms resolution) right before the request was sent. */
  readonly sentAt: number;
  /** …and when the 201 arrived. */
  readonly answeredAt: number;
}

/** One `POST /flows/:id/runs`; throws on anything but 201. */
export async function triggerOne(h: BenchHost, flow: string): Promise<Triggered> {
  const sentAt = nowMs();
  const { status, text } = await request(`${h.floe.api}/flows/${flow}/runs`, {
    method: "POST",
    headers: { "x-floe-auth": h.floe.token, "content-type": "application/json" },
    body: "{}",
  });
  const answeredAt = nowMs();
  if (status !== 201) throw new Error(`bench: trigger answered ${status}: ${text}`);
  const run = readRunId(JSON.parse(text) as unknown);
  return { run, sentAt, answeredAt };
}

function readRunId(body: unknown): string {
  if (typeof body === "object" && body !== null && "run" in body) {
    const r: unknown = body.run;
    if (typeof r === "object" && r !== null && "ref" in r) {
      const ref: unknown = r.ref;
      if (typeof ref === "object" && ref !== null && "run" in ref && typeof ref.run === "string") return ref.run;
    }
  }
  throw new Error(`bench: no run id in ${JSON.stringify(body)}`);
}

/** `count` triggers with at most `inFlight` requests outstanding; results in send order. */
export async function triggerMany(h: BenchHost, flow: string, count: number, inFlight: number, onProgress?: (done: number) => void): Promise<Triggered[]> {
  const out: Triggered[] = new Array<Triggered>(count);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      out[i] = await triggerOne(h, flow);
      done++;
      if (onProgress !== undefined && done % 1000 === 0) onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
  return out;
}

/** Runs ended good since the host started, from its /metrics. */
export async function endedGood(h: BenchHost): Promise<number> {
  const { text } = await request(`${h.floe.api}/metrics`, { headers: { "x-floe-auth": h.floe.token } });
  const m = /^floe_runs_ended_total\{result="good"\} (\d+)$/m.exec(text);
  const bad = /^floe_runs_ended_total\{result="(bad|lost|cancelled)"\} ([1-9]\d*)$/m.exec(text);
  if (bad !== null) throw new Error(`bench: ${bad[2] ?? "?"} run(s) ended ${bad[1] ?? "?"}; see the host output:\n${h.floe.output().slice(-2000)}`);
  return Number(m?.[1] ?? 0);
}

/**
 * Polls /metrics until `n` runs ended good; returns the client wall time when it saw them.
 * Every poll costs the host a /metrics exposition, charged to its CPU per run: a bench that
 * needs the end to the millisecond polls rarely and asks the runs' `endedAt` instead
 * (`lastEndedAt`).
 */
export async function waitEnded(h: BenchHost, n: number, timeoutMs: number, pollMs = 50): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await endedGood(h)) >= n) return nowMs();
    if (Date.now() > deadline) throw new Error(`bench: ${n} runs did not end within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * The latest `endedAt` (host's wall clock, ms) among the newest `count` runs of `flow`
 * (`GET /runs`, newest first, pages of 1000). The host and the bench share this machine's
 * clock.
 */
export async function lastEndedAt(h: BenchHost, flow: string, count: number): Promise<number> {
  let last = 0;
  let before: string | undefined;
  for (let seen = 0; seen < count; ) {
    const limit = Math.min(1000, count - seen);
    const q = `/runs?flow=${encodeURIComponent(flow)}&limit=${limit}${before !== undefined ? `&before=${before}` : ""}`;
    const res = await h.floe.req("GET", q);
    if (res.status !== 200) throw new Error(`bench: GET ${q} answered ${res.status}`);
    const runs = (res.body as { runs?: unknown }).runs;
    if (!Array.isArray(runs) || runs.length === 0) break;
    for (const r of runs as unknown[]) {
      if (typeof r !== "object" || r === null) continue;
      if ("endedAt" in r && typeof r.endedAt === "number") last = Math.max(last, r.endedAt);
      if ("ref" in r && typeof r.ref === "object" && r.ref !== null && "run" in r.ref && typeof r.ref.run === "string") before = r.ref.run;
    }
    seen += runs.length;
  }
  if (last === 0) throw new Error(`bench: no ended run of ${flow} among the newest ${count}`);
  return last;
}

export interface NodeTimes {
  readonly id: string;
  readonly startedAt?: number;
  readonly endedAt?: number;
}

/** The run's node statuses (host timestamps, ms) from `GET /runs/:id`. */
export async function runNodes(h: BenchHost, run: string): Promise<NodeTimes[]> {
  const res = await h.floe.req("GET", `/runs/${run}`);
  if (res.status !== 200) throw new Error(`bench: GET /runs/${run} answered ${res.status}`);
  const body = res.body as { nodes?: unknown };
  if (!Array.isArray(body.nodes)) return [];
  return (body.nodes as unknown[]).flatMap((n): NodeTimes[] => {
    if (typeof n !== "object" || n === null || !("id" in n) || typeof n.id !== "string") return [];
    const started = "startedAt" in n && typeof n.startedAt === "number" ? { startedAt: n.startedAt } : {};
    const ended = "endedAt" in n && typeof n.endedAt === "number" ? { endedAt: n.endedAt } : {};
    return [{ id: n.id, ...started, ...ended }];
  });
}

/** What a node printed on stdout (its output lines, without floe's own sys lines). */
export async function nodeOutput(h: BenchHost, run: string, node: string): Promise<string[]> {
  const res = await h.floe.req("GET", `/runs/${run}/nodes/${node}/log`);
  if (res.status !== 200) throw new Error(`bench: log of ${run}/${node} answered ${res.status}`);
  const lines = (res.body as { lines?: { text: string; stream: string }[] }).lines ?? [];
  return lines.filter((l) => l.stream === "out").map((l) => l.text);
}

/** Resident set size of a process in KiB, from /proc/<pid>/status (Linux). */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (m?.[1] === undefined) throw new Error(`bench: no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

const baselineJs = join(repoRoot, "dist", "test", "bench", "baseline.js");

/** Runs the spawn baseline in its own Node process; returns the wall time and CPU it reports. */
export async function spawnBaseline(procs: number, concurrency: number): Promise<{ ms: number; cpu: CpuTimes }> {
  const child = spawn(process.execPath, [baselineJs, "spawn", String(procs), String(concurrency)], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  if (code !== 0) throw new Error(`bench: spawn baseline exited ${code}`);
  return JSON.parse(out) as { ms: number; cpu: CpuTimes };
}

export interface BaselineServer {
  readonly url: string;
  close(): Promise<void>;
}

/** The bare HTTP + spawn server of baseline.ts, in its own Node process. */
export async function startBaselineServer(): Promise<BaselineServer> {
  const child = spawn(process.execPath, [baselineJs, "serve"], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m?.[1] !== undefined) resolve(Number(m[1]));
    });
    child.once("exit", (c) => reject(new Error(`bench: baseline server exited ${c}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
