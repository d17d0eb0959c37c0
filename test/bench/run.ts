/**
 * `npm run bench [-- --quick] [--only=throughput,latency,…] [--slots=N] [--out=FILE]`
 * `npm run bench -- --scale [options of scale.ts]`: the scale harness instead.
 *
 * Runs the measures in sequence, prints a table (floe p50/p99, the baseline measured in the
 * same run, the ratio), and writes every figure to bench-results.json in the current
 * folder. Benchmarks are not tests: a measure that fails is reported and skipped, and the
 * exit status is 0 unless the command line is wrong.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { floeBin } from "../helpers/paths.js";
import { benchCluster } from "./cluster.js";
import { benchDispatch } from "./dispatch.js";
import { benchDurability } from "./durability.js";
import { benchLatency } from "./latency.js";
import { benchMemory } from "./memory.js";
import type { BenchOptions, Figure } from "./stats.js";
import { targetOf, type Target } from "./targets.js";
import { benchThroughput } from "./throughput.js";
import { runScale } from "./scale.js";

const NAMES = ["throughput", "latency", "memory", "dispatch", "durability", "cluster"] as const;
type Name = (typeof NAMES)[number];

interface Args {
  readonly quick: boolean;
  readonly only: readonly Name[];
  readonly slots: number;
  readonly out: string;
}

function parseArgs(argv: readonly string[]): Args | string {
  let quick = false;
  let only: Name[] = [...NAMES];
  let slots = 8;
  let out = "bench-results.json";
  for (const a of argv) {
    if (a === "--quick") quick = true;
    else if (a.startsWith("--only=")) {
      const want = a.slice(7).split(",").filter((x) => x !== "");
      const bad = want.filter((x) => !(NAMES as readonly string[]).includes(x));
      if (bad.length > 0 || want.length === 0) return `--only takes ${NAMES.join(", ")} (comma-separated); got ${a.slice(7) || "nothing"}`;
      only = NAMES.filter((n) => want.includes(n));
    } else if (a.startsWith("--slots=")) {
      slots = Number(a.slice(8));
      if (!Number.isInteger(slots) || slots < 1) return `--slots takes a positive integer; got ${a.slice(8)}`;
    } else if (a.startsWith("--out=")) out = a.slice(6);
    else return `unknown option ${a}`;
  }
  return { quick, only, slots, out };
}

function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "";
  const abs = Math.abs(x);
  if (abs >= 1000) return x.toFixed(0);
  if (abs >= 100) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

/** The table: headline (value or p50) and p99 for floe and the baseline, the ratio, the target. */
function table(figures: readonly Figure[], targetOf: (f: Figure) => Target | undefined): string {
  const head = ["figure", "unit", "floe p50", "p99", "baseline p50", "p99", "ratio", "target", "met"];
  const rows = figures.map((f) => {
    const t = targetOf(f);
    return [
      f.what,
      f.unit,
      fmt(f.value ?? f.dist?.p50),
      fmt(f.dist !== undefined && f.value === undefined ? f.dist.p99 : undefined),
      fmt(f.baseline?.value ?? f.baseline?.dist?.p50),
      fmt(f.baseline?.value === undefined ? f.baseline?.dist?.p99 : undefined),
      f.ratio === undefined ? "" : `${fmt(f.ratio)}×`,
      t?.text ?? "",
      t === undefined ? "" : t.met ? "yes" : "NO",
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i < 2 || i >= 7 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

async function main(): Promise<number> {
  if (process.argv.includes("--scale")) {
    // The scale harness: its own options and report (scale.ts).
    const dir = await mkdtemp(join(tmpdir(), "floe-scale-"));
    try {
      return await runScale(process.argv.slice(2).filter((a) => a !== "--scale"), dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === "string") {
    process.stderr.write(`bench: ${args}\nusage: npm run bench -- [--quick] [--only=${NAMES.join(",")}] [--slots=N] [--out=FILE]\n`);
    return 2;
  }
  const needsHost = args.only.some((n) => n !== "dispatch");
  if (needsHost && !existsSync(floeBin)) {
    process.stderr.write(`bench: ${floeBin} is missing; build first (npm run bench builds)\n`);
    return 2;
  }
  const started = new Date();
  const o: BenchOptions = { quick: args.quick, slots: args.slots, progress: (l) => process.stderr.write(`  … ${l}\n`) };
  const figures: Figure[] = [];
  const errors: { measure: Name; error: string }[] = [];
  let runsPerSec: number | undefined;
  for (const name of args.only) {
    process.stderr.write(`bench: ${name}\n`);
    const t0 = performance.now();
    try {
      switch (name) {
        case "throughput": {
          const r = await benchThroughput(o);
          runsPerSec = r.runsPerSec;
          figures.push(...r.figures);
          break;
        }
        case "latency":
          figures.push(...(await benchLatency(o, runsPerSec)));
          break;
        case "memory":
          figures.push(...(await benchMemory(o)));
          break;
        case "dispatch":
          figures.push(...(await benchDispatch(o)));
          break;
        case "durability":
          figures.push(...(await benchDurability(o)));
          break;
        case "cluster":
          figures.push(...(await benchCluster(o, runsPerSec)));
          break;
      }
    } catch (e) {
      const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
      errors.push({ measure: name, error });
      process.stderr.write(`bench: ${name} failed (skipped): ${error}\n`);
    }
    process.stderr.write(`bench: ${name} took ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const cpu = cpus();
  const machine = { cpus: cpu.length, model: cpu[0]?.model ?? "?", memMB: Math.round(totalmem() / 2 ** 20), node: process.version, platform: `${process.platform} ${process.arch}` };
  process.stdout.write(`\nfloe benchmarks, ${started.toISOString()}, ${machine.cpus} × ${machine.model}, Node ${machine.node}${args.quick ? " (--quick)" : ""}, ${args.slots} slots\n\n`);
  process.stdout.write(table(figures, targetOf) + "\n");
  const notes = figures.filter((f) => f.note !== undefined);
  if (notes.length > 0) process.stdout.write("\n" + notes.map((f) => `${f.id}: ${f.note ?? ""}`).join("\n") + "\n");
  if (errors.length > 0) process.stdout.write(`\nfailed: ${errors.map((e) => e.measure).join(", ")} (see above)\n`);
  const out = resolve(args.out);
  const withTargets = figures.map((f) => {
    const t = targetOf(f);
    return t === undefined ? f : { ...f, target: t.text, met: t.met };
  });
  await writeFile(out, JSON.stringify({ date: started.toISOString(), quick: args.quick, slots: args.slots, machine, figures: withTargets, errors }, null, 2) + "\n");
  process.stdout.write(`\nwrote ${out}\n`);
  return 0;
}

process.exitCode = await main();
