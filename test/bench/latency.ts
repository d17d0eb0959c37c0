/**
 * Measures 2 and 3: trigger → first task started, and the gap between the tasks of one
 * run (task k exits → task k+1 started), idle (one run at a time) and at half of the
 * measured throughput (open-loop arrivals at a fixed rate), p50/p99.
 *
 * The flow is three chained tasks whose only action is `date +%s%N` (one process per task,
 * like measure 1). Clocks, all on this machine:
 * - trigger time: the bench's wall clock (performance.timeOrigin + now(), sub-ms) taken
 *   right before the request is sent;
 * - task started: the task's own side, the realtime clock in ns that `date` prints as its
 *   first (and only) action; so "started" means the process exists and has run its first
 *   instruction, not that floe decided to start it;
 * - gap: from task k's print (it exits right after) to task k+1's print;
 * - breakdown of the gap: the host's node times from `GET /runs/:id` (Date.now(), ms):
 *   endedAt(k) − print(k) is floe noticing the exit (pipes closed, outputs read, files
 *   cleaned), startedAt(k+1) − endedAt(k) is routing the event, print(k+1) − startedAt(k+1)
 *   is preparing the task and spawning it.
 *
 * Baseline, in the same run: baseline.ts's bare node:http server, which answers 201 and
 * spawns the same chain of three `date` processes, measured with the same client, idle and
 * at the same rate.
 */
import { request } from "./client.js";
import { CHAIN_DATE, nodeOutput, runNodes, startBaselineServer, startBenchHost, triggerOne, type BaselineServer, type BenchHost, type Triggered } from "./host.js";
import { nowMs, optionalRatio, ratioOf, summarize, type BenchOptions, type Figure, type Summary } from "./stats.js";
import { throughputRound, warmUp } from "./throughput.js";

interface Sample {
  readonly sentAt: number;
  readonly answeredAt: number;
  /** What tasks a, b, c printed, as ms since the epoch (µs resolution). */
  readonly prints: readonly number[];
  /** floe only: host times of a, b, c. */
  readonly host?: readonly { readonly startedAt: number; readonly endedAt: number }[];
}

/** The system under test, floe or the baseline, behind the same three calls. */
interface Target {
  trigger(): Promise<Triggered>;
  /** Resolves when the run has ended. */
  ended(run: string): Promise<void>;
  sample(t: Triggered): Promise<Sample>;
}

const NODES = ["a", "b", "c"] as const;
const POLL_MS = 10;

function nsToMs(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text.trim())) throw new Error(`bench: not a date +%s%N stamp: ${JSON.stringify(text)}`);
  return Number(BigInt(text.trim()) / 1000n) / 1000;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function floeTarget(h: BenchHost): Target {
  return {
    trigger: () => triggerOne(h, "stamp"),
    async ended(run) {
      // Long-poll the last task's log (the host answers when a line arrives) rather than
      // polling the run, so that the bench does not load the host while the run is timed.
      for (let after = 0; ; ) {
        const res = await h.floe.req("GET", `/runs/${run}/nodes/c/log?after=${after}&wait=10000`);
        const body = res.body as { lines?: { seq: number; stream: string }[]; live?: boolean };
        const lines = body.lines ?? [];
        for (const l of lines) after = Math.max(after, l.seq);
        if (body.live === false || lines.some((l) => l.stream === "out")) break;
      }
      // The run ends right after that stamp; wait until it is archived.
      for (;;) {
        const res = await h.floe.req("GET", `/runs/${run}`);
        if ((res.body as { state?: string }).state === "archived") return;
        await sleep(2);
      }
    },
    async sample(t) {
      const nodes = await runNodes(h, t.run);
      const host = NODES.map((id) => {
        const n = nodes.find((x) => x.id === id);
        if (n?.startedAt === undefined || n.endedAt === undefined) throw new Error(`bench: node ${id} of ${t.run} has no times`);
        return { startedAt: n.startedAt, endedAt: n.endedAt };
      });
      const prints: number[] = [];
      for (const id of NODES) prints.push(nsToMs((await nodeOutput(h, t.run, id))[0]));
      return { sentAt: t.sentAt, answeredAt: t.answeredAt, prints, host };
    },
  };
}

function baselineTarget(b: BaselineServer): Target {
  const get = async (run: string): Promise<{ prints: string[]; done: boolean }> => {
    const res = await request(`${b.url}/run/${run}`);
    return JSON.parse(res.text) as { prints: string[]; done: boolean };
  };
  return {
    async trigger() {
      // The same client as floe's trigger (client.ts), so both pay the same for it.
      const sentAt = nowMs();
      const res = await request(`${b.url}/run`, { method: "POST", body: "{}" });
      const answeredAt = nowMs();
      const body = JSON.parse(res.text) as { id: string };
      return { run: body.id, sentAt, answeredAt };
    },
    async ended(run) {
      while (!(await get(run)).done) await sleep(POLL_MS);
    },
    async sample(t) {
      const r = await get(t.run);
      return { sentAt: t.sentAt, answeredAt: t.answeredAt, prints: r.prints.map(nsToMs) };
    },
  };
}

/** One run at a time, with a pause after each so the host is idle when the next arrives. */
async function idle(target: Target, n: number): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const t = await target.trigger();
    await target.ended(t.run);
    out.push(await target.sample(t));
    await sleep(20);
  }
  return out;
}

/** Open-loop arrivals at `rate` per second for `count` runs, then every sample. */
async function loaded(target: Target, rate: number, count: number): Promise<Sample[]> {
  const t0 = performance.now();
  const fired: Promise<Triggered>[] = [];
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    fired.push(target.trigger());
  }
  const triggered = await Promise.all(fired);
  const out: Sample[] = [];
  for (const t of triggered) {
    await target.ended(t.run);
    out.push(await target.sample(t));
  }
  return out;
}

function firstTask(s: readonly Sample[]): Summary {
  return summarize(s.map((x) => (x.prints[0] ?? Number.NaN) - x.sentAt));
}

function gaps(s: readonly Sample[]): Summary {
  return summarize(s.flatMap((x) => [1, 2].map((k) => (x.prints[k] ?? Number.NaN) - (x.prints[k - 1] ?? Number.NaN))));
}

/** The host-side split of each gap (and of the first start): see the header. */
function breakdown(s: readonly Sample[]): { hostStart: Summary; exitNoticed: Summary; routing: Summary; spawn: Summary } {
  const hostStart: number[] = [];
  const exitNoticed: number[] = [];
  const routing: number[] = [];
  const spawn: number[] = [];
  for (const x of s) {
    const h = x.host;
    if (h === undefined) continue;
    hostStart.push((h[0]?.startedAt ?? Number.NaN) - x.sentAt);
    for (const k of [1, 2]) {
      const prev = h[k - 1];
      const cur = h[k];
      if (prev === undefined || cur === undefined) continue;
      exitNoticed.push(prev.endedAt - (x.prints[k - 1] ?? Number.NaN));
      routing.push(cur.startedAt - prev.endedAt);
      spawn.push((x.prints[k] ?? Number.NaN) - cur.startedAt);
    }
  }
  return { hostStart: summarize(hostStart), exitNoticed: summarize(exitNoticed), routing: summarize(routing), spawn: summarize(spawn) };
}

const TASK_CLOCK = "task side: `date +%s%N` printed by the task vs the bench's wall clock at send";

export async function benchLatency(o: BenchOptions, measuredRunsPerSec?: number): Promise<Figure[]> {
  const idleN = o.quick ? 20 : 200;
  const h = await startBenchHost({ config: CHAIN_DATE, slots: o.slots });
  const b = await startBaselineServer();
  const figures: Figure[] = [];
  try {
    await warmUp(h, "stamp", o.slots);
    // Half of measure 1's throughput; measured here (on this flow) when measure 1 did not run.
    const full = measuredRunsPerSec ?? (await throughputRound(h, "stamp", o.quick ? 100 : 400)).runsPerSec;
    const rate = full / 2;
    // Ten seconds of arrivals each for floe and the baseline (≥ 400 runs, 800 gaps, at this
    // machine's rates): enough for a p99, and the whole bench stays well under five minutes.
    const loadN = Math.min(1500, Math.max(o.quick ? 30 : 50, Math.round(rate * (o.quick ? 3 : 10))));

    o.progress(`latency: idle, ${idleN} runs (floe, then baseline)`);
    const fIdle = await idle(floeTarget(h), idleN);
    const bIdle = await idle(baselineTarget(b), idleN);

    o.progress(`latency: ${rate.toFixed(1)} runs/s (half of ${full.toFixed(1)}), ${loadN} runs (floe, then baseline)`);
    const fLoad = await loaded(floeTarget(h), rate, loadN);
    const bLoad = await loaded(baselineTarget(b), rate, loadN);

    const adopt = (s: readonly Sample[]): Summary => summarize(s.map((x) => x.answeredAt - x.sentAt));
    for (const [label, f, base] of [
      ["idle", fIdle, bIdle],
      [`at ${rate.toFixed(0)} runs/s`, fLoad, bLoad],
    ] as const) {
      const key = label === "idle" ? "idle" : "half_load";
      const ft = firstTask(f);
      const bft = firstTask(base);
      figures.push({ id: `latency.trigger_to_first_task.${key}`, what: `trigger → first task running, ${label}`, unit: "ms", dist: ft, baseline: { what: "bare node:http + spawn", dist: bft }, ...optionalRatio(ratioOf({ dist: ft }, { dist: bft })), clock: TASK_CLOCK });
      const fa = adopt(f);
      const ba = adopt(base);
      figures.push({ id: `latency.trigger_answered.${key}`, what: `trigger → 201 (run adopted, durable), ${label}`, unit: "ms", dist: fa, baseline: { what: "bare node:http answering 201", dist: ba }, ...optionalRatio(ratioOf({ dist: fa }, { dist: ba })), clock: "bench wall clock, request sent → response read" });
      const fg = gaps(f);
      const bg = gaps(base);
      figures.push({ id: `latency.task_gap.${key}`, what: `task k exits → task k+1 running, ${label}`, unit: "ms", dist: fg, baseline: { what: "bare Node chaining the same processes", dist: bg }, ...optionalRatio(ratioOf({ dist: fg }, { dist: bg })), clock: "task side: task k's `date` stamp (it exits right after) → task k+1's" });
      const bd = breakdown(f);
      figures.push({ id: `latency.host_start.${key}`, what: `  trigger → host begins task a, ${label}`, unit: "ms", dist: bd.hostStart, clock: "host node startedAt (Date.now) vs bench send time" });
      figures.push({ id: `latency.gap_exit_noticed.${key}`, what: `  gap part: exit → host marks task ended, ${label}`, unit: "ms", dist: bd.exitNoticed, clock: "host node endedAt vs task k's stamp" });
      figures.push({ id: `latency.gap_routing.${key}`, what: `  gap part: ended → next task begun, ${label}`, unit: "ms", dist: bd.routing, clock: "host node times" });
      figures.push({ id: `latency.gap_spawn.${key}`, what: `  gap part: begun → process running, ${label}`, unit: "ms", dist: bd.spawn, clock: "host node startedAt vs task k+1's stamp" });
    }
  } finally {
    await b.close();
    await h.close();
  }
  return figures;
}
