/**
 * Where a host's CPU went, from a V8 CPU profile (`FLOE_BENCH_CPU_PROF=DIR npm run bench --
 * --only=throughput` writes one per host): self time by part (floe's own folders, the
 * libraries, Node's internals, the garbage collector) and the functions that took most.
 *
 *   node dist/test/bench/profile-summary.js FILE.cpuprofile [--top=25]
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Which part of the process a frame belongs to. */
export function partOf(f: CallFrame): string {
  const u = f.url;
  if (u === "") {
    if (f.functionName === "(garbage collector)") return "V8: garbage collector";
    if (f.functionName === "(idle)") return "idle";
    if (f.functionName === "(program)") return "V8: program (native, unattributed)";
    return `native: ${f.functionName || "(anonymous)"}`;
  }
  if (u.startsWith("node:")) {
    const m = /^node:(?:internal\/)?([a-z_]+)/.exec(u);
    return `node: ${m?.[1] ?? u}`;
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm !== null) return `lib: ${nm[1]}`;
  const own = /\/dist\/([a-z]+)\/([a-z-]+)\.js$/.exec(u);
  if (own !== null) return `floe: ${own[1]}/${own[2]}`;
  return u;
}

export function summarize(p: Profile, top: number): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n] as const));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const parts = new Map<string, number>();
  const fns = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (n === undefined) continue;
    const part = partOf(n.callFrame);
    if (part === "idle") continue;
    busy += us;
    parts.set(part, (parts.get(part) ?? 0) + us);
    const fn = `${n.callFrame.functionName || "(anonymous)"}  ${part}${n.callFrame.url !== "" ? `:${n.callFrame.lineNumber + 1}` : ""}`;
    fns.set(fn, (fns.get(fn) ?? 0) + us);
  }
  const pct = (us: number): string => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
  const lines = [`busy ${(busy / 1000).toFixed(0)} ms of ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms profiled`, "", "by part (self time):"];
  for (const [part, us] of [...parts].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${part}`);
  lines.push("", "functions (self time):");
  for (const [fn, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${fn}`);
  return lines.join("\n");
}

if (process.argv[1]?.endsWith("profile-summary.js")) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write("usage: node dist/test/bench/profile-summary.js FILE.cpuprofile [--top=N]\n");
    process.exit(2);
  }
  const top = Number(/^--top=(\d+)$/.exec(process.argv[3] ?? "")?.[1] ?? 25);
  process.stdout.write(`${summarize(JSON.parse(readFileSync(file, "utf8")) as Profile, top)}\n`);
}
