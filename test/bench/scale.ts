/**
 * `npm run bench -- --scale [--hosts=500] [--backlog=50000] [--rate=200] [--seconds=60]
 *                           [--mode=wake|herd] [--slots=4] [--task-ms=400]`
 *
 * The scale harness (issue "cluster at scale"): many simulated hosts in this one process
 * against a real redis-server and nats-server it starts. A simulated host is the real
 * dispatcher (hub/dispatcher.ts) on the real Redis cluster state, its own wake-up
 * connection, heartbeats and reaps at the real lease's period; its tasks are timers (no
 * processes, no files). A backlog of runs no host can take is adopted first, then runs
 * arrive as a Poisson process, a mix of plain runs, runs needing a host tag, runs on a
 * few shared resources and runs of a flow with a concurrency limit.
 *
 * It reports Redis CPU (INFO deltas, idle and under load), per-script p50/p99 (SLOWLOG, every
 * command logged while measuring), heartbeat round trip, pend added → claimed for runs that
 * could start at once, wake-ups and claim conflicts per claim, Redis memory, NATS messages per
 * run; and checks afterwards: no run claimed twice, no two runs on one resource at once, runs
 * on the same resource started in adoption order, a flow's concurrency never exceeded, no
 * live host reaped. `--mode=herd` runs the way before wake-ups (every host passes on every
 * pend added and run ended, told over NATS as the real hosts were), for the comparison.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { Redis } from "ioredis";
import { Dispatcher, type DispatchMode } from "../../hub/dispatcher.js";
import { DEFAULT_LEASE_MS, Lease } from "../../hub/lease.js";
import { Publisher } from "../../hub/publisher.js";
import { RunTable } from "../../hub/run-table.js";
import type { RunEvent } from "../../hub/types.js";
import { LocalBus } from "../../store/bus.js";
import type { PendRecord } from "../../store/cluster-state.js";
import { RedisClusterState } from "../../store/redis-state.js";
import { startNats, startRedis, type Broker } from "../helpers/servers.js";
import { checkScale, type RunLog } from "./scale-invariants.js";
import { redisCpuS, redisMemory, scriptTimes, SlowlogSampler } from "./scale-redis.js";
import { percentile } from "./stats.js";

export interface ScaleOptions {
  readonly hosts: number;
  readonly backlog: number;
  readonly rate: number;
  readonly seconds: number;
  readonly mode: DispatchMode;
  readonly slots: number;
  readonly taskMs: number;
  readonly dir: string;
  readonly progress: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const RESOURCES = 20;
const LIMIT = 3;

interface Kind {
  readonly flowKey: string;
  readonly hostTags: readonly string[];
  readonly resources: readonly string[];
  readonly concurrency?: number;
}

/** 70 % plain, 10 % needing tag linux (half the hosts have it), 15 % on one of 20 resources, 5 % of a flow limited to 3 at once. */
function arrivalKind(rnd: number, pick: number): Kind {
  if (rnd < 0.7) return { flowKey: "plain/1", hostTags: [], resources: [] };
  if (rnd < 0.8) return { flowKey: "linux/1", hostTags: ["linux"], resources: [] };
  if (rnd < 0.95) return { flowKey: "res/1", hostTags: [], resources: [`res-${Math.floor(pick * RESOURCES)}`] };
  return { flowKey: "lim/1", hostTags: [], resources: [], concurrency: LIMIT };
}

const CLUSTER = "scale";
const SUBJECT = "floe.scale.events";

class SimHost {
  readonly state: RedisClusterState;
  readonly dispatcher: Dispatcher;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  running = 0;

  constructor(
    readonly name: string,
    readonly tags: readonly string[],
    readonly slots: number,
    redis: Redis,
    private readonly h: Harness,
  ) {
    this.state = new RedisClusterState(redis, { cluster: CLUSTER, ownsConnection: false });
    this.dispatcher = new Dispatcher({
      state: this.state,
      table: new RunTable(),
      host: name,
      publisher: new Publisher(new LocalBus<RunEvent>(), undefined, undefined),
      log: h.log,
      mode: h.o.mode,
      mayClaim: () => true,
      activate: async (run, token) => this.activate(run, token),
    });
  }

  async heartbeat(): Promise<void> {
    const t0 = performance.now();
    await this.state.heartbeat({ name: this.name, tags: this.tags, slots: this.slots, running: this.running, lastSeen: Date.now(), startedAt: 0 }, this.h.lease.ms, this.h.lease.marginMs);
    if (this.h.measuring) this.h.heartbeatMs.push(performance.now() - t0);
  }

  /** Heartbeats, reaps and the safety pass at the real hosts' period, each host at its own phase. */
  start(): void {
    const every = this.h.lease.renewEveryMs;
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        await this.heartbeat();
        for (const lost of await this.state.reapDead()) this.h.reaped.push(`${lost.run} of ${lost.host}`);
        if (this.dispatcher.mode === "herd") this.dispatcher.kick();
        else this.dispatcher.kickIfQuiet(5000);
      } catch (e) {
        this.h.errors.push(String(e));
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), every);
    };
    this.timer = setTimeout(() => void tick(), Math.random() * every);
    this.dispatcher.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.dispatcher.stop();
    await this.state.close();
  }

  private activate(run: string, token: number): void {
    const r = this.h.runs.get(run);
    if (r === undefined) return;
    r.claims.push({ host: this.name, token, at: performance.now() });
    this.running++;
    const ms = -Math.log(1 - Math.random()) * this.h.o.taskMs;
    setTimeout(() => {
      r.releaseAt = performance.now();
      void this.state
        .release(run, token)
        .then(() => {
          this.running--;
          r.endedAt = performance.now();
          this.h.ended++;
          this.dispatcher.kick(); // its slot is free (the hub's afterEnd)
          this.h.told();
        })
        .catch((e: unknown) => this.h.errors.push(String(e)));
    }, ms);
  }
}

class Harness {
  readonly log = pino({ level: "silent" });
  readonly lease = new Lease(DEFAULT_LEASE_MS, { renew: async () => "renewed", probe: async () => undefined, standDown: async () => undefined, regained: async () => undefined, selfFence: true, log: this.log });
  readonly runs = new Map<string, RunLog>();
  readonly heartbeatMs: number[] = [];
  readonly reaped: string[] = [];
  readonly errors: string[] = [];
  hosts: SimHost[] = [];
  measuring = false;
  ended = 0;
  seq = 0;
  nats: NatsConnection | undefined;
  /**
   * Adopts every arriving run (for the host it picks), on one connection: Redis adds them in
   * the order they were numbered, so the harness's numbering is the adoption order.
   */
  adopter: RedisClusterState | undefined;

  constructor(readonly o: ScaleOptions) {}

  /** A pend added or a run ended: in herd mode every host hears of it (the run events over NATS). */
  told(): void {
    this.nats?.publish(SUBJECT, "x");
  }
}

export interface ScaleReport {
  readonly text: string;
  readonly violations: readonly string[];
  readonly figures: Record<string, number>;
}

export async function benchScale(o: ScaleOptions): Promise<ScaleReport> {
  const brokers: Broker[] = [];
  const h = new Harness(o);
  const conns: Redis[] = [];
  try {
    // everysec, as most deployments run it: an fsync per write would time the disk, not floe.
    const redisB = await startRedis(o.dir, ["--appendfsync", "everysec", "--maxclients", String(o.hosts * 2 + 100)]);
    brokers.push(redisB);
    const natsB = await startNats(o.dir, { jetstream: false });
    brokers.push(natsB);
    const admin = new Redis(redisB.url);
    conns.push(admin);
    // Hosts share a few command connections (each real host has one); each has its own wake-up connection.
    for (let i = 0; i < Math.min(8, o.hosts); i++) conns.push(new Redis(redisB.url, { enableOfflineQueue: true, commandTimeout: 10_000 }));
    h.adopter = new RedisClusterState(conns[1] as Redis, { cluster: CLUSTER, ownsConnection: false });
    const nc = await connect({ servers: natsB.url });
    h.nats = nc;
    for (let i = 0; i < o.hosts; i++) {
      const tags = i % 2 === 0 ? ["linux"] : [];
      h.hosts.push(new SimHost(`h${String(i).padStart(4, "0")}`, tags, o.slots, conns[1 + (i % (conns.length - 1))] as Redis, h));
    }
    if (o.mode === "herd") {
      const sub = nc.subscribe(SUBJECT);
      void (async () => {
        for await (const _ of sub) for (const x of h.hosts) x.dispatcher.kick();
      })();
    }
    await Promise.all(h.hosts.map((x) => x.heartbeat()));

    // The backlog: runs no host can take, adopted by one host, which parks them in its first pass.
    o.progress(`${o.mode}: adopting a backlog of ${o.backlog}`);
    const first = h.hosts[0] as SimHost;
    for (let i = 0; i < o.backlog; i += 1000) {
      const batch: Promise<boolean>[] = [];
      for (let j = i; j < Math.min(o.backlog, i + 1000); j++) {
        const p: PendRecord = { run: `b${String(j).padStart(7, "0")}`, flowKey: "stuck/1", hostTags: ["nobody-has-this"], resources: [], adoptedBy: first.name, adoptedAt: Date.now(), record: "" };
        batch.push(first.state.addPend(p));
      }
      await Promise.all(batch);
    }
    first.start();
    const parkedKey = first.state.keys.table("parked");
    const deadline = Date.now() + 120_000;
    while ((await admin.zcard(parkedKey)) < o.backlog) {
      if (Date.now() > deadline) throw new Error("the backlog was not parked within 2 minutes");
      await sleep(200);
    }
    for (const x of h.hosts.slice(1)) x.start();
    o.progress(`${o.mode}: ${o.hosts} hosts up, backlog parked; idle for 10 s`);
    await sleep(5000);
    const idle0 = await redisCpuS(admin);
    const idleT0 = performance.now();
    await sleep(5000);
    const idleCpu = (await redisCpuS(admin)) - idle0;
    const idleS = (performance.now() - idleT0) / 1000;

    // Arrivals: a warm-up of 5 s, then the measured window.
    let arriving = true;
    const arrivals = (async () => {
      let next = performance.now();
      const pending: Promise<void>[] = [];
      while (arriving) {
        const now = performance.now();
        while (next <= now) {
          next += (-Math.log(1 - Math.random()) * 1000) / o.rate;
          pending.push(arrive(h));
        }
        await sleep(Math.max(0, Math.min(50, next - performance.now())));
        if (pending.length > 1000) await Promise.all(pending.splice(0));
      }
      await Promise.all(pending);
    })();
    o.progress(`${o.mode}: ${o.rate} runs/s arriving; warm-up 5 s, then ${o.seconds} s measured`);
    await sleep(5000);
    const slowlog = await SlowlogSampler.start(admin);
    const before = { cpu: await redisCpuS(admin), t: performance.now(), ended: h.ended, seq: h.seq, nats: { ...nc.stats() }, stats: sumStats(h), proc: process.cpuUsage() };
    h.measuring = true;
    await sleep(o.seconds * 1000);
    h.measuring = false;
    const after = { cpu: await redisCpuS(admin), t: performance.now(), ended: h.ended, seq: h.seq, nats: { ...nc.stats() }, stats: sumStats(h), proc: process.cpuUsage(before.proc) };
    const logged = await slowlog.stop();
    const commandstats = await admin.info("commandstats");
    arriving = false;
    await arrivals;
    o.progress(`${o.mode}: arrivals stopped; waiting for the runs to end`);
    const drainBy = Date.now() + 60_000;
    while ([...h.runs.values()].some((r) => r.endedAt === undefined && r.kind.flowKey !== "stuck/1") && Date.now() < drainBy) await sleep(200);
    const memory = await redisMemory(admin);
    o.progress(`${o.mode}: stopping the hosts`);
    // Bounded: a report is worth more than a clean stop of a host that hangs.
    await Promise.race([Promise.all(h.hosts.map((x) => x.stop())), sleep(15_000)]);

    const wallS = (after.t - before.t) / 1000;
    const runsEnded = after.ended - before.ended;
    const d = { ...diffStats(after.stats, before.stats) };
    const startNow = [...h.runs.values()].filter((r) => r.measured && r.kind.resources.length === 0 && r.kind.concurrency === undefined && r.claims[0] !== undefined).map((r) => (r.claims[0]?.at ?? 0) - r.addedAt);
    startNow.sort((a, b) => a - b);
    const hb = [...h.heartbeatMs].sort((a, b) => a - b);
    const scripts = scriptTimes(logged);
    const violations = checkScale([...h.runs.values()], LIMIT);
    if (h.reaped.length > 0) violations.push(`live hosts reaped: ${h.reaped.slice(0, 5).join(", ")}${h.reaped.length > 5 ? "…" : ""} (${h.reaped.length})`);
    const unended = [...h.runs.values()].filter((r) => r.endedAt === undefined && r.kind.flowKey !== "stuck/1").length;
    if (unended > 0) violations.push(`${unended} runs that could start had not ended a minute after arrivals stopped`);
    const figures: Record<string, number> = {
      hosts: o.hosts,
      backlog: o.backlog,
      runsPerS: runsEnded / wallS,
      redisIdlePct: (idleCpu / idleS) * 100,
      redisLoadPct: ((after.cpu - before.cpu) / wallS) * 100,
      redisCpuMsPerRun: ((after.cpu - before.cpu) * 1000) / Math.max(1, runsEnded),
      heartbeatP50Ms: percentile(hb, 50),
      heartbeatP99Ms: percentile(hb, 99),
      claimP50Ms: percentile(startNow, 50),
      claimP99Ms: percentile(startNow, 99),
      wakesPerClaim: d.woken / Math.max(1, d.claimed),
      passesPerClaim: d.passes / Math.max(1, d.claimed),
      snapshotsPerClaim: d.snapshots / Math.max(1, d.claimed),
      conflictsPerClaim: d.conflicts / Math.max(1, d.claimed),
      redisMemoryMB: memory / 2 ** 20,
      natsMsgsPerRun: (after.nats.inMsgs - before.nats.inMsgs + after.nats.outMsgs - before.nats.outMsgs) / Math.max(1, runsEnded),
      harnessCpuPct: ((after.proc.user + after.proc.system) / 1e6 / wallS) * 100,
      errors: h.errors.length,
    };
    const lines = [
      `scale harness, mode ${o.mode}: ${o.hosts} hosts × ${o.slots} slots, backlog ${o.backlog}, ${o.rate} runs/s offered, tasks ${o.taskMs} ms mean, ${o.seconds} s measured`,
      ...Object.entries(figures).map(([k, v]) => `  ${k.padEnd(20)} ${Number.isInteger(v) ? v : v.toFixed(3)}`),
      "  per script (SLOWLOG, µs): name calls p50 p99 max",
      ...scripts.map((s) => `    ${s.name.padEnd(14)} ${String(s.n).padStart(8)} ${String(s.p50).padStart(6)} ${String(s.p99).padStart(6)} ${String(s.max).padStart(7)}`),
      "  commandstats (measured window):",
      ...commandstats
        .split("\n")
        .filter((l) => l.startsWith("cmdstat_"))
        .map((l) => `    ${l.trim()}`),
      violations.length === 0 ? "  invariants: no violation" : `  invariants: ${violations.length} violation(s)\n${violations.map((v) => `    ${v}`).join("\n")}`,
      ...(h.errors.length > 0 ? [`  errors (first 3): ${h.errors.slice(0, 3).join(" | ")}`] : []),
    ];
    return { text: lines.join("\n"), violations, figures };
  } finally {
    await h.nats?.close().catch(() => undefined);
    for (const c of conns) c.disconnect();
    for (const b of brokers.reverse()) await b.stop();
  }
}

async function arrive(h: Harness): Promise<void> {
  const host = h.hosts[Math.floor(Math.random() * h.hosts.length)] as SimHost;
  const adopter = h.adopter as RedisClusterState;
  const kind = arrivalKind(Math.random(), Math.random());
  const seq = ++h.seq;
  const run = `a${String(seq).padStart(8, "0")}`;
  const log: RunLog = { run, kind, seq, addedAt: 0, claims: [], measured: h.measuring };
  h.runs.set(run, log);
  try {
    await adopter.addPend({ run, ...kind, adoptedBy: host.name, adoptedAt: Date.now(), record: "" });
    log.addedAt = performance.now();
    host.dispatcher.kick(); // as adoption does
    h.told();
  } catch (e) {
    h.errors.push(String(e));
  }
}

type Sum = Record<"passes" | "snapshots" | "wakesSent" | "woken" | "claimed" | "conflicts", number>;

function sumStats(h: Harness): Sum {
  const s: Sum = { passes: 0, snapshots: 0, wakesSent: 0, woken: 0, claimed: 0, conflicts: 0 };
  for (const x of h.hosts) for (const k of Object.keys(s) as (keyof Sum)[]) s[k] += x.dispatcher.stats[k];
  return s;
}

function diffStats(a: Sum, b: Sum): Sum {
  const s = { ...a };
  for (const k of Object.keys(s) as (keyof Sum)[]) s[k] = a[k] - b[k];
  return s;
}

function arg(argv: readonly string[], name: string, dflt: number): number {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  const v = a === undefined ? dflt : Number(a.slice(name.length + 3));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}: expected a number`);
  return v;
}

/** The `--scale` entry of `npm run bench`. */
export async function runScale(argv: readonly string[], dir: string): Promise<number> {
  const modeArg = argv.find((a) => a.startsWith("--mode="))?.slice(7) ?? "wake";
  if (modeArg !== "wake" && modeArg !== "herd") throw new Error("--mode takes wake or herd");
  const r = await benchScale({
    hosts: arg(argv, "hosts", 500),
    backlog: arg(argv, "backlog", 50_000),
    rate: arg(argv, "rate", 200),
    seconds: arg(argv, "seconds", 60),
    mode: modeArg,
    slots: arg(argv, "slots", 4),
    taskMs: arg(argv, "task-ms", 400),
    dir,
    progress: (l) => process.stderr.write(`  … ${l}\n`),
  });
  process.stdout.write(r.text + "\n");
  return r.violations.length === 0 ? 0 : 1;
}
