/**
 * Measure 4: the host's resident memory with 10,000 pending runs, and what each pend adds.
 * The flow needs host tag `gpu`, which the host does not have, so every run stays a pend
 * (waiting "no live host has tags [gpu]"). Runs are triggered over HTTP, 32 in flight.
 *
 * RSS is VmRSS from /proc/<pid>/status of the `floe serve` process, read once it has
 * settled (no change over a second, or 10 s). The baseline is the same host idle, after a
 * warm-up of 200 pends (JIT, first folders); growth per pend is taken from there on, so it
 * is the cost of a pend, not of a first request. No GC is forced: garbage not yet
 * collected counts, as it does for the machine.
 *
 * Also reported: how fast pends are adopted at the start and at the end of the 10,000,
 * since each adoption runs a dispatch pass over the whole pending list.
 */
import { rssKiB, startBenchHost, triggerMany, UNPLACEABLE, type BenchHost } from "./host.js";
import { summarize, type BenchOptions, type Figure } from "./stats.js";

const IN_FLIGHT = 32;
const WARM = 200;

/** RSS once it stops moving (the dispatcher and GC catching up). */
async function settledRss(h: BenchHost): Promise<number> {
  let last = await rssKiB(h.pid);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await rssKiB(h.pid);
    if (Math.abs(now - last) < 256) return now;
    last = now;
  }
  return last;
}

export async function benchMemory(o: BenchOptions): Promise<Figure[]> {
  const total = o.quick ? 600 : 10_000;
  const block = o.quick ? 200 : 1_000;
  const h = await startBenchHost({ config: UNPLACEABLE, slots: o.slots, tags: [] });
  try {
    const fresh = await settledRss(h);
    await triggerMany(h, "parked", WARM, IN_FLIGHT);
    const warm = await settledRss(h);
    // Blocks of triggers, timed one by one: adoption rate as the pending list grows.
    const rates: number[] = [];
    for (let done = WARM; done < total; ) {
      const n = Math.min(block, total - done);
      const t0 = performance.now();
      await triggerMany(h, "parked", n, IN_FLIGHT);
      rates.push((n * 1000) / (performance.now() - t0));
      done += n;
      o.progress(`memory: ${done} pends, ${(rates[rates.length - 1] ?? 0).toFixed(0)} adopted/s`);
    }
    const loaded = await settledRss(h);
    const metrics = await h.floe.req("GET", "/metrics");
    const pending = Number(/^floe_runs\{state="pending"\} (\d+)$/m.exec(typeof metrics.body === "string" ? metrics.body : "")?.[1] ?? Number.NaN);
    if (pending !== total) throw new Error(`bench: expected ${total} pending runs, the host has ${pending}`);
    const perPend = (loaded - warm) / (total - WARM);
    const first = rates[0] ?? Number.NaN;
    const last = rates[rates.length - 1] ?? Number.NaN;
    return [
      {
        id: "memory.rss_pending",
        what: `host RSS with ${total.toLocaleString("en")} pending runs`,
        unit: "MB",
        value: loaded / 1024,
        baseline: { what: `the same host idle (after ${WARM} warm-up pends)`, value: warm / 1024 },
        ratio: loaded / warm,
        clock: "VmRSS of the floe process, settled",
        note: `fresh host ${(fresh / 1024).toFixed(1)} MB`,
      },
      {
        id: "memory.per_pend",
        what: "RSS growth per pending run",
        unit: "KB",
        value: perPend,
        clock: "(RSS loaded − RSS warm) ÷ pends added",
      },
      {
        id: "memory.adopt_rate",
        what: `pends adopted/s, per block of ${block} (first → last)`,
        unit: "runs/s",
        value: last,
        dist: summarize(rates),
        baseline: { what: `the first block of ${block}`, value: first },
        ratio: last / first,
        clock: "bench wall clock per block of triggers",
        note: `blocks: ${rates.map((r) => r.toFixed(0)).join(", ")}`,
      },
    ];
  } finally {
    await h.close();
  }
}
