/**
 * Measure 1: runs per second of an embedded host running a flow of three chained `exec`
 * tasks of `true` (output captured, every state change durable), triggered over HTTP as
 * fast as the host accepts them.
 *
 * Baseline, in the same run: a plain Node script (baseline.ts) spawning the same number of
 * `true` processes (3 per run) the same way, at the same concurrency (the host's slots).
 * Rounds alternate floe and baseline so that drift on a shared machine hits both; the
 * ratio is the median of the per-round ratios.
 *
 * Clock: the machine's wall clock, from the first trigger request sent (bench) to the latest
 * `endedAt` of the round's runs (host). The bench learns that they all ended from the host's
 * /metrics, polled every 500 ms: at 50 ms its expositions took about 5 % of the host's busy
 * time in a profile, charged to floe's CPU per run.
 */
import { helperPids, hostCpuTimes } from "./baseline.js";
import { CHAIN_TRUE, lastEndedAt, rssKiB, spawnBaseline, startBenchHost, triggerMany, waitEnded, endedGood, type BenchHost } from "./host.js";
import { median, nowMs, optionalRatio, ratioOf, summarize, type BenchOptions, type Figure } from "./stats.js";

/** Requests in flight while triggering: enough to keep the host's accept path busy. */
export const TRIGGER_IN_FLIGHT = 16;

export interface RoundResult {
  readonly runs: number;
  readonly ms: number;
  readonly runsPerSec: number;
  /** Triggers answered 201 per second while the host was also running the runs. */
  readonly acceptedPerSec: number;
  /** CPU of the host process per run, and of its task processes per run, ms. */
  readonly cpuPerRun: number;
  readonly childCpuPerRun: number;
}

/** Triggers `runs` runs of `flow` and waits until they all ended good. */
export async function throughputRound(h: BenchHost, flow: string, runs: number): Promise<RoundResult> {
  const before = await endedGood(h);
  const cpu0 = await hostCpuTimes(h.pid);
  const t0 = nowMs();
  // Polled twice a second (each poll is a /metrics exposition the host pays for); the round
  // ends at the last run's own end, read afterwards.
  const ended = waitEnded(h, before + runs, 600_000, 500);
  const triggered = await triggerMany(h, flow, runs, TRIGGER_IN_FLIGHT);
  await ended;
  const cpu1 = await hostCpuTimes(h.pid);
  const t1 = await lastEndedAt(h, flow, runs);
  const lastAnswer = Math.max(...triggered.map((t) => t.answeredAt));
  return {
    runs,
    ms: t1 - t0,
    runsPerSec: (runs * 1000) / (t1 - t0),
    acceptedPerSec: (runs * 1000) / (lastAnswer - t0),
    cpuPerRun: (cpu1.self - cpu0.self) / runs,
    childCpuPerRun: (cpu1.children - cpu0.children) / runs,
  };
}

/** A few runs first, so the measured ones do not pay for JIT warm-up and first-time folders. */
export async function warmUp(h: BenchHost, flow: string, slots: number): Promise<void> {
  await throughputRound(h, flow, Math.max(8, slots * 2));
}

export interface ThroughputResult {
  readonly figures: Figure[];
  /** floe's runs/s (median of rounds), for measure 2's half-load rate. */
  readonly runsPerSec: number;
}

export async function benchThroughput(o: BenchOptions): Promise<ThroughputResult> {
  // Rounds of 700: about ten seconds each here, and the whole bench stays under five minutes
  // on a slow day for this machine.
  const runs = o.quick ? 150 : 700;
  const rounds = o.quick ? 1 : 3;
  const h = await startBenchHost({ config: CHAIN_TRUE, slots: o.slots });
  const floe: RoundResult[] = [];
  const base: number[] = [];
  const baseCpu: number[] = [];
  const baseChildCpu: number[] = [];
  const ratios: number[] = [];
  let rss: { host: number; helper: number } | undefined;
  try {
    await warmUp(h, "chain", o.slots);
    for (let i = 0; i < rounds; i++) {
      o.progress(`throughput: round ${i + 1}/${rounds}: floe, ${runs} runs`);
      const r = await throughputRound(h, "chain", runs);
      floe.push(r);
      o.progress(`throughput: round ${i + 1}/${rounds}: floe ${r.runsPerSec.toFixed(1)} runs/s; baseline, ${runs * 3} spawns`);
      const { ms, cpu } = await spawnBaseline(runs * 3, o.slots);
      const b = (runs * 1000) / ms;
      baseCpu.push(cpu.self / runs);
      baseChildCpu.push(cpu.children / runs);
      base.push(b);
      ratios.push(r.runsPerSec / b);
    }
    // What the host and its helper keep after the rounds (the issue's ≤ 100 MB together).
    rss = { host: await rssKiB(h.pid), helper: 0 };
    for (const p of await helperPids(h.pid)) rss.helper += await rssKiB(p).catch(() => 0);
  } finally {
    await h.close();
  }
  const runsPerSec = median(floe.map((r) => r.runsPerSec));
  const basePerSec = median(base);
  const perRun = summarize(floe.map((r) => r.ms / r.runs));
  return {
    runsPerSec,
    figures: [
      {
        id: "throughput.runs_per_s",
        what: `throughput, 3×exec true per run, ${o.slots} slots`,
        unit: "runs/s",
        value: runsPerSec,
        baseline: { what: `plain Node spawning 3 true per run, ${o.slots} at a time`, value: basePerSec },
        ratio: median(ratios),
        clock: "wall clock: first trigger sent (bench) → last run's endedAt (host)",
        note: `${rounds} round(s) of ${runs} runs; floe rounds ${floe.map((r) => r.runsPerSec.toFixed(1)).join(", ")}; baseline ${base.map((b) => b.toFixed(1)).join(", ")}; ${(perRun.p50).toFixed(2)} ms of wall time per run`,
      },
      {
        id: "throughput.accepted_per_s",
        what: "triggers answered 201 while running them",
        unit: "runs/s",
        value: median(floe.map((r) => r.acceptedPerSec)),
        clock: "bench wall clock: first trigger sent → last 201 received",
        note: `${TRIGGER_IN_FLIGHT} requests in flight`,
      },
      {
        id: "throughput.host_cpu_per_run",
        what: "host CPU per run (host + its spawn helper, user+sys)",
        unit: "ms",
        value: median(floe.map((r) => r.cpuPerRun)),
        baseline: { what: "the plain Node script's own CPU per 3 spawns", value: median(baseCpu) },
        ...optionalRatio(ratioOf({ value: median(floe.map((r) => r.cpuPerRun)) }, { value: median(baseCpu) })),
        clock: "/proc/<pid>/stat utime+stime (10 ms ticks) over the round",
      },
      ...(rss === undefined
        ? []
        : [
            {
              id: "throughput.rss_after",
              what: "host + spawn helper RSS after the throughput rounds",
              unit: "MB",
              value: (rss.host + rss.helper) / 1024,
              clock: "/proc/<pid>/status VmRSS of the host and its spawn helper",
              note: `host ${(rss.host / 1024).toFixed(1)} MB, spawn helper ${(rss.helper / 1024).toFixed(1)} MB`,
            },
          ]),
      {
        id: "throughput.task_cpu_per_run",
        what: "task processes' CPU per run (3 × true)",
        unit: "ms",
        value: median(floe.map((r) => r.childCpuPerRun)),
        baseline: { what: "the same processes under the plain script", value: median(baseChildCpu) },
        ...optionalRatio(ratioOf({ value: median(floe.map((r) => r.childCpuPerRun)) }, { value: median(baseChildCpu) })),
        clock: "/proc/<pid>/stat cutime+cstime (reaped children)",
      },
    ],
  };
}
