/**
 * Measure 6: what durability costs. Measure 1's run (three chained `true` tasks, triggered
 * over HTTP) on two hosts of the same build: one with every state change forced to disk,
 * one started with `FLOE_UNSAFE_NO_FSYNC=1` (store/durability.ts: files are still written
 * by temp+rename and append, but never fsynced — a bench-only switch). Rounds alternate
 * between the two so that machine drift hits both; the ratio is the median of the
 * per-round ratios durable ÷ no-fsync.
 */
import { CHAIN_TRUE, startBenchHost } from "./host.js";
import { median, type BenchOptions, type Figure } from "./stats.js";
import { throughputRound, warmUp } from "./throughput.js";

export async function benchDurability(o: BenchOptions): Promise<Figure[]> {
  const runs = o.quick ? 80 : 500;
  const rounds = o.quick ? 1 : 2;
  const durable = await startBenchHost({ config: CHAIN_TRUE, slots: o.slots });
  const unsafe = await startBenchHost({ config: CHAIN_TRUE, slots: o.slots, env: { FLOE_UNSAFE_NO_FSYNC: "1" } });
  const on: number[] = [];
  const off: number[] = [];
  const ratios: number[] = [];
  try {
    await warmUp(durable, "chain", o.slots);
    await warmUp(unsafe, "chain", o.slots);
    for (let i = 0; i < rounds; i++) {
      o.progress(`durability: round ${i + 1}/${rounds}: fsync on`);
      const a = (await throughputRound(durable, "chain", runs)).runsPerSec;
      o.progress(`durability: round ${i + 1}/${rounds}: fsync on ${a.toFixed(1)} runs/s; fsync off`);
      const b = (await throughputRound(unsafe, "chain", runs)).runsPerSec;
      on.push(a);
      off.push(b);
      ratios.push(a / b);
    }
  } finally {
    await Promise.allSettled([durable.close(), unsafe.close()]);
  }
  return [
    {
      id: "durability.throughput",
      what: "throughput, durable writes vs FLOE_UNSAFE_NO_FSYNC=1",
      unit: "runs/s",
      value: median(on),
      baseline: { what: "same build, fsync off", value: median(off) },
      ratio: median(ratios),
      clock: "as throughput.runs_per_s",
      note: `${rounds} round(s) of ${runs} runs; on ${on.map((x) => x.toFixed(1)).join(", ")}; off ${off.map((x) => x.toFixed(1)).join(", ")}`,
    },
  ];
}
