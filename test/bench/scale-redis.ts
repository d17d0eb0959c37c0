/**
 * What the scale harness (scale.ts) reads from Redis: CPU and memory from INFO, and each
 * script's time from SLOWLOG with every command logged — read and emptied four times a second
 * in one step, as the commands scripts run are logged too and a log kept for the whole
 * window would be too big to read.
 */
import type { Redis } from "ioredis";
import { SCRIPTS } from "../../store/redis-scripts.js";
import { percentile } from "./stats.js";

export async function redisCpuS(r: Redis): Promise<number> {
  const info = await r.info("cpu");
  const get = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, "m").exec(info)?.[1] ?? "0");
  return get("used_cpu_sys") + get("used_cpu_user");
}

export async function redisMemory(r: Redis): Promise<number> {
  const info = await r.info("memory");
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? "0");
}

export class SlowlogSampler {
  private readonly entries: unknown[] = [];
  private running = true;
  private loop: Promise<void> = Promise.resolve();

  private constructor(private readonly r: Redis) {}

  static async start(r: Redis): Promise<SlowlogSampler> {
    await r.config("SET", "slowlog-log-slower-than", "0");
    await r.config("SET", "slowlog-max-len", "50000");
    await r.slowlog("RESET");
    const s = new SlowlogSampler(r);
    s.loop = s.run();
    return s;
  }

  private async run(): Promise<void> {
    while (this.running) {
      await new Promise((res) => setTimeout(res, 250));
      const got = (await this.r.multi().slowlog("GET", 50000).slowlog("RESET").exec())?.[0]?.[1];
      // Only the hosts' own calls: the scripts and the blocking pops.
      if (Array.isArray(got)) for (const e of got) if (Array.isArray(e) && /^(evalsha|blpop)$/i.test(String((e[3] as unknown[] | undefined)?.[0] ?? ""))) this.entries.push(e);
    }
  }

  /** Stops logging every command; the entries gathered. */
  async stop(): Promise<unknown[]> {
    this.running = false;
    await this.loop;
    await this.r.config("SET", "slowlog-log-slower-than", "10000");
    return this.entries;
  }
}

/** SLOWLOG entries (every command, threshold 0) grouped by script name (EVALSHA's SHA) or command. */
export function scriptTimes(entries: readonly unknown[]): { name: string; n: number; p50: number; p99: number; max: number }[] {
  const names = new Map(Object.values(SCRIPTS).map((s) => [s.sha, s.name]));
  const by = new Map<string, number[]>();
  for (const e of entries) {
    if (!Array.isArray(e)) continue;
    const us = Number(e[2]);
    const args = Array.isArray(e[3]) ? e[3].map(String) : [];
    const cmd = (args[0] ?? "?").toLowerCase();
    if (cmd === "slowlog" || cmd === "config" || cmd === "info") continue;
    // Commands a script runs are logged too: only the scripts and the blocking pops are the hosts' own calls.
    if (cmd !== "evalsha" && cmd !== "blpop") continue;
    const name = cmd === "evalsha" ? (names.get(args[1] ?? "") ?? "evalsha?") : cmd;
    let xs = by.get(name);
    if (xs === undefined) by.set(name, (xs = []));
    xs.push(us);
  }
  return [...by.entries()]
    .map(([name, xs]) => {
      xs.sort((a, b) => a - b);
      return { name, n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs[xs.length - 1] ?? 0 };
    })
    .sort((a, b) => b.n - a.n);
}
