/**
 * `npm run chaos [-- --seed=N] [--runs=N] [--minutes=M] [--keep] [--partitions]`
 *
 * `--partitions`: hosts reach the brokers through fault proxies, and the faults are
 * partitions of one awake host (from Redis, NATS, both, one way, a slow lossy link).
 *
 * A chaos run against a real three-host cluster (see suite.ts): prints the seed first (a
 * run is reproduced from it: same workload, same fault schedule), then the report; writes
 * it to chaos-results.json in the current folder. Exit status 0 only with zero violations.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatReport, runChaos } from "./suite.js";

interface Args {
  readonly seed: number;
  readonly runs: number;
  readonly minutes: number;
  readonly keep: boolean;
  readonly partitions: boolean;
}

function parseArgs(argv: readonly string[]): Args | string {
  let seed = Math.floor(Math.random() * 2 ** 31);
  let runs = 240;
  let minutes = 2;
  let keep = false;
  let partitions = false;
  for (const a of argv) {
    const [k, v = ""] = a.split("=", 2);
    if (k === "--seed" && /^\d+$/.test(v)) seed = Number(v);
    else if (k === "--runs" && /^\d+$/.test(v) && Number(v) > 0) runs = Number(v);
    else if (k === "--minutes" && Number(v) > 0 && Number(v) <= 10) minutes = Number(v);
    else if (a === "--keep") keep = true;
    else if (a === "--partitions") partitions = true;
    else return `unknown or bad option ${a} (--seed=N, --runs=N, --minutes=M with 0 < M ≤ 10, --keep, --partitions)`;
  }
  return { seed, runs, minutes, keep, partitions };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === "string") {
    console.error(args);
    return 2;
  }
  console.log(`chaos seed ${args.seed} (reproduce with: npm run chaos -- --seed=${args.seed} --runs=${args.runs} --minutes=${args.minutes}${args.partitions ? " --partitions" : ""})`);
  const dir = mkdtempSync(join(tmpdir(), "floe-chaos-"));
  const started = Date.now();
  const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const report = await runChaos({ seed: args.seed, runs: args.runs, windowMs: args.minutes * 60_000, dir, log, partitions: args.partitions });
  for (const line of formatReport(report)) console.log(line);
  const out = resolve("chaos-results.json");
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`report written to ${out}`);
  if (report.violations === 0 && !args.keep) rmSync(dir, { recursive: true, force: true });
  else console.log(`files kept in ${dir} (evidence.log, root-*/, report.json)`);
  return report.violations === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
