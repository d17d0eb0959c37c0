/**
 * `node dist/test/bench/backlog.js [--hosts=8] [--backlog=4000] [--rate=10] [--seconds=20] [--settle=5] [--count=1]`
 *
 * The cluster's cost against its backlog (issue "cluster at scale"): real `floe serve`
 * hosts on their own nats-server and redis-server, a backlog of runs no host can take (a
 * flow whose host-tags no host has), then one-task runs arriving at `rate` a second spread
 * over the hosts. Reports Redis's CPU (INFO cpu deltas) idle and per run, each idle host's
 * CPU (/proc), and trigger → archived p50/p99 (the bench's clock before the POST to the
 * run's `endedAt`, one machine; read by listing the run index at the end, not run by run,
 * so that measuring costs Redis next to nothing per run). Run it twice with the backlog
 * doubled: the figures should not move.
 *
 * `--kind=slots`: a backlog that waits for a slot instead: two hosts (of the `hosts`) also
 * have tag `pool`, their slots are filled by runs that wait on a data form (no process), and
 * the backlog is runs of a flow that needs `pool` — runnable, every slot for them taken. The
 * one-task runs go to the other hosts. (`--kind=tags`, the default: no host has the tag.)
 *
 * `--settle=S`: seconds between the backlog's adoption and the idle measurement (the hosts'
 * garbage from adopting it is collected meanwhile, or not).
 *
 * `--fsync=always|everysec` (default everysec): the AOF's fsync policy of the bench's
 * redis-server. `everysec` is the Procfile's (Redis's default); with `always` each request that
 * writes costs Redis an `fdatasync` in its main thread (~0.1 ms of CPU on this VM).
 *
 * `--count=1` also counts what Redis is sent during the load (MONITOR: each command a host
 * sends, scripts by name, and the commands run inside them), per run. MONITOR costs Redis
 * time itself, so CPU figures of a counting run are not comparable with the others.
 * `--count=2` logs each command's time (SLOWLOG) without MONITOR: scripts' times as they are.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { redisKeys } from "../../store/redis-keys.js";
import { SCRIPTS } from "../../store/redis-scripts.js";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { startNats, startRedis, type Broker } from "../helpers/servers.js";
import { request } from "./client.js";
import { summarize } from "./stats.js";

const CONF = `
flows:
  - id: one
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}
  - id: stuck
    host-tags: [nobody-has-this]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}
  - id: pool
    host-tags: [pool]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: hold, type: data, listen: trigger.good, opts: {form: {title: Hold the slot, fields: [{id: note, prompt: Note, type: string}]}}}
`;

/** Slots per host (each host's `--slots`). */
const SLOTS = 4;
/** Hosts that also have tag `pool` with `--kind=slots`. */
const POOL_HOSTS = 2;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function arg(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  const v = a === undefined ? dflt : Number(a.slice(name.length + 3));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}: expected a number`);
  return v;
}

async function redisCpuS(r: Redis): Promise<number> {
  const info = await r.info("cpu");
  const get = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, "m").exec(info)?.[1] ?? "0");
  return get("used_cpu_sys") + get("used_cpu_user");
}

/** utime + stime of a process, in seconds. */
async function procCpuS(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * Counts the commands Redis runs while it is on, from MONITOR lines: top-level commands by
 * name (EVALSHA by the script's name), and commands run inside scripts apart.
 */
async function countCommands(url: string): Promise<{ stop: () => { sent: Map<string, number>; inScripts: Map<string, number> } }> {
  const names = new Map(Object.values(SCRIPTS).flatMap((s) => [[s.sha, s.name], [s.lua, s.name]]));
  const sent = new Map<string, number>();
  const inScripts = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
  const mon = await new Redis(url).monitor();
  mon.on("monitor", (_time: string, args: string[], source: string) => {
    const cmd = (args[0] ?? "").toLowerCase();
    if (source.includes("lua")) return bump(inScripts, cmd);
    if (cmd === "evalsha" || cmd === "eval") return bump(sent, `script ${names.get(args[1] ?? "") ?? "?"}`);
    bump(sent, cmd);
  });
  return {
    stop: () => {
      mon.disconnect();
      return { sent, inScripts };
    },
  };
}

/** Microseconds per command (scripts by name) from SLOWLOG, logging every command since it was reset. */
async function scriptTimes(r: Redis): Promise<Map<string, number>> {
  const names = new Map(Object.values(SCRIPTS).flatMap((s) => [[s.sha, s.name], [s.lua, s.name]]));
  const out = new Map<string, number>();
  const entries = (await r.slowlog("GET", -1)) as unknown[];
  for (const e of entries) {
    if (!Array.isArray(e)) continue;
    const usec = Number(e[2]);
    const args = Array.isArray(e[3]) ? (e[3] as unknown[]).map(String) : [];
    const cmd = (args[0] ?? "").toLowerCase();
    const key = cmd === "evalsha" || cmd === "eval" ? `script ${names.get(args[1] ?? "") ?? "?"}` : cmd;
    out.set(key, (out.get(key) ?? 0) + usec);
  }
  return out;
}

async function trigger(h: FloeProcess, flow: string): Promise<string> {
  const r = await request(`${h.api}/flows/${flow}/runs`, { method: "POST", headers: { "content-type": "application/json", "x-floe-auth": h.token }, body: "{}" });
  if (r.status !== 201) throw new Error(`trigger ${flow}: ${r.status} ${r.text}`);
  const body: unknown = JSON.parse(r.text);
  const run = (body as { run?: { ref?: { run?: unknown } } }).run?.ref?.run;
  if (typeof run !== "string") throw new Error(`trigger ${flow}: no run id in ${r.text}`);
  return run;
}

/**
 * When each archived run of `flow` ended, from the cluster's run index (`GET /runs`, pages of
 * 1,000): one listing for all runs, so that measuring costs Redis next to nothing per run.
 */
async function archivedRuns(h: FloeProcess, flow: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let before: string | undefined;
  for (;;) {
    const r = await request(`${h.api}/runs?flow=${flow}&state=archived&limit=1000${before !== undefined ? `&before=${before}` : ""}`, { headers: { "x-floe-auth": h.token } });
    if (r.status !== 200) throw new Error(`GET /runs: ${r.status} ${r.text}`);
    const runs = (JSON.parse(r.text) as { runs: { ref: { run: string }; endedAt?: number }[] }).runs;
    for (const s of runs) if (s.endedAt !== undefined) out.set(s.ref.run, s.endedAt);
    if (runs.length < 1000) return out;
    before = runs.at(-1)?.ref.run;
  }
}

async function main(): Promise<void> {
  const hostsN = arg("hosts", 8);
  const backlog = arg("backlog", 4000);
  const rate = arg("rate", 10);
  const seconds = arg("seconds", 20);
  const count = arg("count", 0) > 0;
  // --count=2: each script's time only (SLOWLOG), without MONITOR's cost to Redis.
  const monitor = arg("count", 0) === 1;
  const settleS = arg("settle", 5);
  const kind = process.argv.find((x) => x.startsWith("--kind="))?.slice(7) ?? "tags";
  if (kind !== "tags" && kind !== "slots") throw new Error("--kind: tags or slots");
  if (kind === "slots" && hostsN <= POOL_HOSTS) throw new Error(`--kind=slots: more than ${POOL_HOSTS} hosts`);
  const fsync = process.argv.find((x) => x.startsWith("--fsync="))?.slice(8) ?? "everysec";
  if (fsync !== "always" && fsync !== "everysec") throw new Error("--fsync: always or everysec");
  const dir = await mkdtemp(join(tmpdir(), "floe-backlog-"));
  const brokers: Broker[] = [];
  const hosts: FloeProcess[] = [];
  try {
    const nats = await startNats(dir);
    brokers.push(nats);
    const redisB = await startRedis(dir, ["--appendfsync", fsync]);
    brokers.push(redisB);
    const conf = join(dir, "flows.yml");
    await writeFile(conf, CONF);
    for (let i = 1; i <= hostsN; i++) {
      const tags = kind === "slots" && i <= POOL_HOSTS ? ["linux", "pool"] : ["linux"];
      hosts.push(await startFloe({ conf, root: join(dir, `root-h${i}`), host: `h${i}`, tags, extra: [`--nats=${nats.url}`, `--redis=${redisB.url}`, `--slots=${SLOTS}`, "--log-level=error"] }));
    }
    const r = new Redis(redisB.url);
    const waits = kind === "slots" ? "pool" : "stuck";
    if (kind === "slots") {
      // The pool hosts' slots, filled first (runs waiting on a form hold theirs until the end).
      for (let i = 0; i < POOL_HOSTS * SLOTS; i++) await trigger(hosts[i % hosts.length] as FloeProcess, "pool");
      const filled = Date.now() + 30_000;
      const running = redisKeys().table("running");
      const poolHosts = hosts.slice(0, POOL_HOSTS).map((_, i) => `h${i + 1}`);
      while ((await r.hmget(running, ...poolHosts)).some((n) => n !== String(SLOTS))) {
        if (Date.now() > filled) throw new Error("the pool hosts' slots were not filled within 30 s");
        await sleep(100);
      }
    }
    process.stderr.write(`backlog: ${hostsN} hosts up; adopting ${backlog} runs no host can take (${kind === "slots" ? "every slot for them taken" : "no host has their tags"})\n`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < backlog) {
          const i = next++;
          await trigger(hosts[i % hosts.length] as FloeProcess, waits);
        }
      }),
    );
    await sleep(settleS * 1000);
    const idleS = 10;
    const idleCounter = monitor ? await countCommands(redisB.url) : undefined;
    if (count) await r.config("SET", "slowlog-log-slower-than", "0").then(() => r.config("SET", "slowlog-max-len", "1000000")).then(() => r.slowlog("RESET"));
    const r0 = await redisCpuS(r);
    const h0 = await Promise.all(hosts.map((h) => procCpuS(h.child.pid as number)));
    await sleep(idleS * 1000);
    const r1 = await redisCpuS(r);
    const h1 = await Promise.all(hosts.map((h) => procCpuS(h.child.pid as number)));
    const idleCounted = idleCounter?.stop();
    const idleSlow = count ? await scriptTimes(r) : undefined;
    const redisIdle = (r1 - r0) / idleS;
    const hostIdle = h1.map((c, i) => (c - (h0[i] ?? 0)) / idleS);
    process.stderr.write(`backlog: idle measured; ${rate} runs/s for ${seconds} s\n`);
    const started: { run: string; host: FloeProcess; t0: number }[] = [];
    await r.config("RESETSTAT");
    const counter = monitor ? await countCommands(redisB.url) : undefined;
    // Counting: every command's time in SLOWLOG too, to say which scripts Redis's time goes to.
    if (count) await r.config("SET", "slowlog-log-slower-than", "0").then(() => r.config("SET", "slowlog-max-len", "1000000")).then(() => r.slowlog("RESET"));
    const l0 = await redisCpuS(r);
    const tl0 = performance.now();
    const total = Math.round(rate * seconds);
    const posts: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = tl0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const h = hosts[i % hosts.length] as FloeProcess;
      const t0 = Date.now();
      posts.push(trigger(h, "one").then((run) => void started.push({ run, host: h, t0 })));
    }
    await Promise.all(posts);
    const deadline = Date.now() + 60_000;
    let ended = await archivedRuns(hosts[0] as FloeProcess, "one");
    while (started.some((s) => !ended.has(s.run)) && Date.now() < deadline) {
      await sleep(250);
      ended = await archivedRuns(hosts[0] as FloeProcess, "one");
    }
    const latencies = started.flatMap((s) => {
      const end = ended.get(s.run);
      return end === undefined ? [] : [end - s.t0];
    });
    const l1 = await redisCpuS(r);
    const counted = counter?.stop();
    const slow = count ? await scriptTimes(r) : undefined;
    const loadS = (performance.now() - tl0) / 1000;
    const lat = summarize(latencies);
    // Where Redis's time went during the load, per run: the costliest commands (scripts by SHA).
    const stats = (await r.info("commandstats")).split("\n").flatMap((l) => {
      const m = /^cmdstat_(\S+):calls=(\d+),usec=(\d+)/.exec(l.trim());
      return m === null ? [] : [{ cmd: m[1] ?? "", calls: Number(m[2]), usecPerRun: Math.round(Number(m[3]) / latencies.length) }];
    });
    stats.sort((a, b) => b.usecPerRun - a.usecPerRun);
    const out = {
      hosts: hostsN,
      backlog,
      kind,
      fsync,
      rate,
      runs: latencies.length,
      redisIdlePctOfCore: +(redisIdle * 100).toFixed(2),
      hostIdlePctOfCore: { max: +(Math.max(...hostIdle) * 100).toFixed(2), mean: +((hostIdle.reduce((a, b) => a + b, 0) / hostIdle.length) * 100).toFixed(2) },
      redisCpuMsPerRun: +(((l1 - l0) * 1000) / latencies.length).toFixed(2),
      scriptsPerRun: +((stats.find((c) => c.cmd === "evalsha")?.calls ?? 0) / latencies.length).toFixed(1),
      redisCpuMsPerRunOverIdle: +((((l1 - l0) - redisIdle * loadS) * 1000) / latencies.length).toFixed(2),
      triggerToArchivedMs: { p50: +lat.p50.toFixed(1), p99: +lat.p99.toFixed(1) },
    };
    process.stdout.write(JSON.stringify(out) + "\n");
    process.stdout.write(JSON.stringify({ redisTimePerRun: stats.slice(0, 8) }) + "\n");
    const per = (m: Map<string, number>, d: number): Record<string, number> => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, +(n / d).toFixed(2)]));
    const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
    if (idleCounted !== undefined) {
      process.stdout.write(JSON.stringify({ idleCommandsSentPerSecondPerHost: +(sum(idleCounted.sent) / idleS / hostsN).toFixed(2), sentPerSecond: per(idleCounted.sent, idleS), usecPerSecond: per(idleSlow ?? new Map(), idleS) }) + "\n");
    }
    if (counted !== undefined) {
      process.stdout.write(JSON.stringify({ commandsSentPerRun: +(sum(counted.sent) / latencies.length).toFixed(2), sent: per(counted.sent, latencies.length), insideScripts: per(counted.inScripts, latencies.length) }) + "\n");
    }
    if (slow !== undefined) {
      process.stdout.write(JSON.stringify({ usecPerRunByCommand: per(slow, latencies.length) }) + "\n");
    }
    r.disconnect();
  } finally {
    await Promise.allSettled(hosts.map((h) => h.kill9()));
    for (const b of brokers) await b.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`backlog: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
