/**
 * `npm run bench -- --scale [--hosts=500] [--backlog=50000] [--rate=200] [--seconds=60]
 *                           [--mode=wake|herd] [--slots=4] [--task-ms=400] [--workers=N]
 *                           [--shared-connections=N] [--ramp=0] [--take=1] [--align=1]
 *                           [--redis-priority=1]`
 *
 * The scale harness (issue "cluster at scale"): many simulated hosts against a real
 * redis-server and nats-server it starts, spread over `--workers` processes
 * (scale-worker.ts; by default one per 125 hosts, at most 4) so that the hosts' own
 * heartbeats are not made late by one saturated event loop. A simulated host is the real
 * dispatcher (hub/dispatcher.ts) on the real Redis cluster state, its own wake-up
 * connection, heartbeats and reaps at the real lease's period; its tasks are timers (no
 * processes, no files). This process adopts the runs: a backlog no host can take first,
 * then runs arriving as a Poisson process, a mix of plain runs, runs needing a host tag,
 * runs on a few shared resources and runs of a flow with a concurrency limit.
 *
 * It reports Redis CPU (INFO deltas, idle and under load), per-script p50/p99 (SLOWLOG, every
 * command logged, in a third as long a window after the CPU's: logging costs Redis CPU), heartbeat round trip, pend added → claimed for runs that
 * could start at once, wake-ups and claim conflicts per claim, Redis memory, NATS messages per
 * run; and checks afterwards: no run claimed twice, no two runs on one resource at once, runs
 * on the same resource started in adoption order, a flow's concurrency never exceeded, no
 * live host reaped. `--mode=herd` runs the way before wake-ups (every host passes on every
 * pend added and run ended, told over NATS as the real hosts were), for the comparison.
 * `--take=0`: no run is taken as it is adopted (ClusterState.addPendTaking), as before it.
 * `--align=0`: each host ticks at a phase of its own, not on the instants hub/tick-phase.ts gives.
 * `--redis-priority=0`: redis-server at the harness's CPU priority (by default it is raised:
 * ScaleOptions.redisPriority).
 */
import { fork, type ChildProcess } from "node:child_process";
import { loadavg, setPriority } from "node:os";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import type { PendRecord } from "../../store/cluster-state.js";
import { RedisClusterState } from "../../store/redis-state.js";
import { startNats, startRedis, type Broker } from "../helpers/servers.js";
import { checkScale, type RunLog } from "./scale-invariants.js";
import { hostName, mono, type DispatchSum, type FromWorker, type ToWorker } from "./scale-protocol.js";
import { redisCpuS, redisMemory, scriptTimes, SlowlogSampler } from "./scale-redis.js";
import { percentile } from "./stats.js";

export interface ScaleOptions {
  readonly hosts: number;
  readonly backlog: number;
  readonly rate: number;
  readonly seconds: number;
  readonly mode: "wake" | "herd";
  /** Runs taken by their adopting host as they are added, where a pass would give them to it (wake mode; `--take=0`: never, the way before it). */
  readonly take: boolean;
  /** Hosts tick together, in groups, on the wall clock's instants (hub/tick-phase.ts; `--align=0`: each at its own phase, the way before). */
  readonly align: boolean;
  /**
   * redis-server scheduled ahead of the harness's processes (nice −10): on this 2-core
   * machine the simulated hosts' CPU would otherwise preempt Redis in the middle of a script,
   * and its time in SLOWLOG would be the scheduler's — a deployment gives Redis cores of its
   * own. `--redis-priority=0`: the same priority as the harness.
   */
  readonly redisPriority: boolean;
  readonly slots: number;
  readonly taskMs: number;
  /**
   * Seconds over which arrivals rise from nothing to `rate` at the start of the 5-s warm-up
   * (at most 5), as a load test ramps up; 0: the full rate from the first second.
   */
  readonly rampS: number;
  readonly workers: number;
  /** Command connections per worker, shared by its hosts; 0: one per host. */
  readonly sharedConnections: number;
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

/** A worker process and the hosts it simulates. */
class WorkerProc {
  private readonly waiting = new Map<number, (m: { sum: DispatchSum; cpuUs: number }) => void>();
  private ready: Promise<void>;
  stopped: Promise<readonly number[]>;

  constructor(
    readonly child: ChildProcess,
    readonly hosts: ReadonlySet<string>,
    h: Harness,
  ) {
    let onReady: () => void = () => undefined;
    let onStopped: (hb: readonly number[]) => void = () => undefined;
    this.ready = new Promise<void>((r) => (onReady = r));
    this.stopped = new Promise((r) => (onStopped = r));
    child.on("message", (m: FromWorker) => {
      if (m.t === "ready") onReady();
      else if (m.t === "events") h.events(m);
      else if (m.t === "sample") this.waiting.get(m.id)?.(m);
      else if (m.t === "stopped") onStopped(m.heartbeatMs);
    });
    child.on("exit", () => onStopped([]));
  }

  send(m: ToWorker): void {
    if (this.child.connected) this.child.send(m);
  }

  async whenReady(): Promise<void> {
    await this.ready;
  }

  sample(id: number): Promise<{ sum: DispatchSum; cpuUs: number }> {
    return new Promise((r) => {
      this.waiting.set(id, r);
      this.send({ t: "sample", id });
    });
  }
}

class Harness {
  readonly runs = new Map<string, RunLog>();
  readonly reaped: string[] = [];
  readonly errors: string[] = [];
  workers: WorkerProc[] = [];
  hostNames: string[] = [];
  measuring = false;
  ended = 0;
  seq = 0;
  samples = 0;
  nats: NatsConnection | undefined;
  /**
   * Adopts every arriving run (for the host it picks), on one connection: Redis adds them in
   * the order they were numbered, so the harness's numbering is the adoption order.
   */
  adopter: RedisClusterState | undefined;
  /** Kicks for the adopting hosts, sent to their workers every few ms in one message each. */
  private kicks = new Map<WorkerProc, string[]>();
  private kickTimer: NodeJS.Timeout | undefined;

  constructor(readonly o: ScaleOptions) {}

  workerOf(host: string): WorkerProc | undefined {
    return this.workers.find((w) => w.hosts.has(host));
  }

  /** A pend this host adopted was added: its dispatcher looks (as adoption kicks it). */
  kick(host: string): void {
    const w = this.workerOf(host);
    if (w === undefined) return;
    const list = this.kicks.get(w) ?? [];
    list.push(host);
    this.kicks.set(w, list);
    this.kickTimer ??= setTimeout(() => {
      this.kickTimer = undefined;
      for (const [x, hosts] of this.kicks) x.send({ t: "kick", hosts });
      this.kicks.clear();
    }, 1);
  }

  events(m: Extract<FromWorker, { t: "events" }>): void {
    for (const c of m.claims) this.runs.get(c.run)?.claims.push(c);
    for (const e of m.ends) {
      const r = this.runs.get(e.run);
      if (r === undefined) continue;
      r.releaseAt = e.releaseAt;
      r.endedAt = e.endedAt;
      this.ended++;
    }
    this.reaped.push(...m.reaped);
    this.errors.push(...m.errors);
  }

  /** The dispatchers' counters summed over the workers, and their CPU (µs). */
  async sample(): Promise<{ sum: DispatchSum; cpuUs: number }> {
    const id = ++this.samples;
    const all = await Promise.all(this.workers.map((w) => w.sample(id)));
    const sum: DispatchSum = { passes: 0, snapshots: 0, wakesSent: 0, woken: 0, claimed: 0, conflicts: 0 };
    let cpuUs = 0;
    for (const a of all) {
      cpuUs += a.cpuUs;
      for (const k of Object.keys(sum) as (keyof DispatchSum)[]) sum[k] += a.sum[k];
    }
    return { sum, cpuUs };
  }

  broadcast(m: ToWorker): void {
    for (const w of this.workers) w.send(m);
  }

  /** A pend added: in herd mode every host hears of it (the run events over NATS). */
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
    const redisB = await startRedis(o.dir, ["--appendfsync", "everysec", "--maxclients", String(o.hosts * 2 + (o.sharedConnections > 0 ? o.sharedConnections * o.workers : o.hosts) + 100)]);
    brokers.push(redisB);
    const natsB = await startNats(o.dir, { jetstream: false });
    brokers.push(natsB);
    const admin = new Redis(redisB.url);
    conns.push(admin);
    const redisPriority = o.redisPriority ? await raisePriority(admin) : "as the harness's";
    const adoptConn = new Redis(redisB.url, { enableOfflineQueue: true, commandTimeout: 10_000 });
    conns.push(adoptConn);
    h.adopter = new RedisClusterState(adoptConn, { cluster: CLUSTER, ownsConnection: false });
    const nc = await connect({ servers: natsB.url });
    h.nats = nc;
    h.hostNames = Array.from({ length: o.hosts }, (_, i) => hostName(i));
    // Hosts spread round-robin over the workers, each with its own wake-up connection. Their
    // commands go over `--shared-connections` per worker (8 in all by default, as before the
    // workers: a host's heartbeat may wait behind other hosts' snapshots on its connection);
    // 0 gives each host a command connection of its own, as a real host has (1,000 sockets at
    // 500 hosts, and no pipelining across hosts: more CPU on both sides).
    const nw = Math.max(1, Math.min(o.workers, o.hosts));
    for (let k = 0; k < nw; k++) {
      const mine = h.hostNames.map((_, i) => i).filter((i) => i % nw === k);
      // FLOE_BENCH_CPU_PROF=DIR: each worker writes a V8 CPU profile there when it stops (test/bench/profile-summary.ts reads it).
      const prof = process.env["FLOE_BENCH_CPU_PROF"];
      const child = fork(new URL("./scale-worker.js", import.meta.url), [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: prof !== undefined && prof !== "" ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [] });
      const w = new WorkerProc(child, new Set(mine.map(hostName)), h);
      h.workers.push(w);
      w.send({ t: "config", config: { redisUrl: redisB.url, natsUrl: natsB.url, cluster: CLUSTER, subject: SUBJECT, mode: o.mode, align: o.align, slots: o.slots, taskMs: o.taskMs, hosts: mine, connections: o.sharedConnections > 0 ? o.sharedConnections : mine.length } });
    }
    await Promise.all(h.workers.map((w) => w.whenReady()));

    // The backlog: runs no host can take, adopted by one host, which parks them in its first pass.
    o.progress(`${o.mode}: ${o.hosts} hosts in ${nw} worker processes; adopting a backlog of ${o.backlog}`);
    const first = hostName(0);
    for (let i = 0; i < o.backlog; i += 1000) {
      const batch: Promise<boolean>[] = [];
      for (let j = i; j < Math.min(o.backlog, i + 1000); j++) {
        const p: PendRecord = { run: `b${String(j).padStart(7, "0")}`, flowKey: "stuck/1", hostTags: ["nobody-has-this"], resources: [], adoptedBy: first, adoptedAt: Date.now(), record: "" };
        batch.push(h.adopter.addPend(p));
      }
      await Promise.all(batch);
    }
    h.workerOf(first)?.send({ t: "start", host: first });
    const parkedKey = h.adopter.keys.table("parked");
    const deadline = Date.now() + 120_000;
    while ((await admin.zcard(parkedKey)) < o.backlog) {
      if (Date.now() > deadline) throw new Error("the backlog was not parked within 2 minutes");
      await sleep(200);
    }
    h.broadcast({ t: "start" });
    o.progress(`${o.mode}: ${o.hosts} hosts up, backlog parked; idle for 10 s`);
    await sleep(5000);
    const idle0 = await redisCpuS(admin);
    const idleT0 = performance.now();
    await sleep(5000);
    const idleCpu = (await redisCpuS(admin)) - idle0;
    const idleS = (performance.now() - idleT0) / 1000;

    // Arrivals: a warm-up of 5 s, then the measured window.
    let arriving = true;
    const arrivalsFrom = performance.now();
    const arrivals = (async () => {
      let next = performance.now();
      const pending: Promise<void>[] = [];
      // During the ramp the rate rises linearly: each gap drawn at the rate of its start.
      const rateAt = (t: number): number => (o.rampS > 0 ? Math.max(o.rate / 50, o.rate * Math.min(1, (t - arrivalsFrom) / (o.rampS * 1000))) : o.rate);
      while (arriving) {
        const now = performance.now();
        while (next <= now) {
          next += (-Math.log(1 - Math.random()) * 1000) / rateAt(next);
          pending.push(arrive(h));
        }
        await sleep(Math.max(0, Math.min(50, next - performance.now())));
        if (pending.length > 1000) await Promise.all(pending.splice(0));
      }
      await Promise.all(pending);
    })();
    o.progress(`${o.mode}: ${o.rate} runs/s arriving${o.rampS > 0 ? ` (reached over the first ${o.rampS} s)` : ""}; warm-up 5 s, then ${o.seconds} s measured`);
    // A line a second while runs arrive: where a collapse starts (the scanned list growing,
    // Redis or the machine saturating) shows in these, not in the window's totals.
    const timeline = (async () => {
      const listKey = (h.adopter as RedisClusterState).keys.table("pendOrder");
      let last = { t: performance.now(), cpu: await redisCpuS(admin), seq: h.seq, ended: h.ended, ...(await h.sample()) };
      while (arriving) {
        await sleep(1000);
        const now = { t: performance.now(), cpu: await redisCpuS(admin), seq: h.seq, ended: h.ended, ...(await h.sample()) };
        const dt = (now.t - last.t) / 1000;
        const listed = await admin.zcard(listKey);
        const d = diffStats(now.sum, last.sum);
        const rate = (n: number): string => (n / dt).toFixed(0);
        o.progress(
          `${o.mode}:   +${((now.t - arrivalsFrom) / 1000).toFixed(0)} s: ${rate(now.seq - last.seq)} added/s, ${rate(now.ended - last.ended)} ended/s, ${listed} on the scanned list; ` +
            `passes ${rate(d.passes)}/s (${rate(d.snapshots)} read the list), wake-ups ${rate(d.wakesSent)}/s, claims ${rate(d.claimed)}/s, refused ${rate(d.conflicts)}/s; ` +
            `Redis ${(((now.cpu - last.cpu) / dt) * 100).toFixed(0)} %, hosts' CPU ${(((now.cpuUs - last.cpuUs) / 1e6 / dt) * 100).toFixed(0)} %, load ${(loadavg()[0] ?? 0).toFixed(1)}`,
        );
        last = now;
      }
    })();
    await sleep(5000);
    const s0 = await h.sample();
    const before = { cpu: await redisCpuS(admin), t: performance.now(), ended: h.ended, seq: h.seq, nats: { ...nc.stats() }, stats: s0.sum, workersUs: s0.cpuUs, proc: process.cpuUsage() };
    h.measuring = true;
    h.broadcast({ t: "measuring", on: true });
    const loads: number[] = [];
    for (let i = 0; i < o.seconds; i += 5) {
      await sleep(Math.min(5, o.seconds - i) * 1000);
      loads.push(loadavg()[0] ?? 0);
    }
    h.broadcast({ t: "measuring", on: false });
    h.measuring = false;
    const s1 = await h.sample();
    const after = { cpu: await redisCpuS(admin), t: performance.now(), ended: h.ended, seq: h.seq, nats: { ...nc.stats() }, stats: s1.sum, workersUs: s1.cpuUs, proc: process.cpuUsage(before.proc) };
    // Script times in a window of their own, after the CPU's: with every command logged
    // (those scripts run too) SLOWLOG costs Redis more CPU than some scripts do.
    o.progress(`${o.mode}: script times (SLOWLOG) for ${Math.ceil(o.seconds / 3)} s more`);
    const slowlog = await SlowlogSampler.start(admin);
    await sleep(Math.ceil(o.seconds / 3) * 1000);
    const logged = await slowlog.stop();
    const commandstats = await admin.info("commandstats");
    arriving = false;
    await arrivals;
    await timeline;
    o.progress(`${o.mode}: arrivals stopped; waiting for the runs to end`);
    const drainBy = Date.now() + 60_000;
    while ([...h.runs.values()].some((r) => r.endedAt === undefined && r.kind.flowKey !== "stuck/1") && Date.now() < drainBy) await sleep(200);
    const memory = await redisMemory(admin);
    o.progress(`${o.mode}: stopping the hosts`);
    h.broadcast({ t: "stop" });
    // Bounded: a report is worth more than a clean stop of a host that hangs.
    const hbs = await Promise.race([Promise.all(h.workers.map((w) => w.stopped)), sleep(20_000).then(() => [])]);

    const wallS = (after.t - before.t) / 1000;
    const runsEnded = after.ended - before.ended;
    const d = { ...diffStats(after.stats, before.stats) };
    const startNow = [...h.runs.values()].filter((r) => r.measured && r.addedAt > 0 && r.kind.resources.length === 0 && r.kind.concurrency === undefined && r.claims[0] !== undefined).map((r) => (r.claims[0]?.at ?? 0) - r.addedAt);
    startNow.sort((a, b) => a - b);
    const free = [...h.runs.values()].filter((r) => r.measured && r.addedAt > 0 && r.kind.resources.length === 0 && r.kind.concurrency === undefined && r.claims[0] !== undefined);
    const listed = free.filter((r) => r.taken !== true).map((r) => (r.claims[0]?.at ?? 0) - r.addedAt);
    listed.sort((a, b) => a - b);
    const hb = hbs.flat().sort((a, b) => a - b);
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
      /** Of those runs, the share taken by their adopting host as they were added (0 ms), and the others' latency. */
      takenAtAdoptionPct: (100 * (free.length - listed.length)) / Math.max(1, free.length),
      claimListedP50Ms: percentile(listed, 50),
      claimListedP99Ms: percentile(listed, 99),
      wakesPerClaim: d.woken / Math.max(1, d.claimed),
      passesPerClaim: d.passes / Math.max(1, d.claimed),
      snapshotsPerClaim: d.snapshots / Math.max(1, d.claimed),
      conflictsPerClaim: d.conflicts / Math.max(1, d.claimed),
      redisMemoryMB: memory / 2 ** 20,
      natsMsgsPerRun: (after.nats.inMsgs - before.nats.inMsgs + after.nats.outMsgs - before.nats.outMsgs) / Math.max(1, runsEnded),
      harnessCpuPct: ((after.proc.user + after.proc.system + after.workersUs - before.workersUs) / 1e6 / wallS) * 100,
      workers: nw,
      loadAvgMin: Math.min(...loads),
      loadAvgMax: Math.max(...loads),
      errors: h.errors.length,
    };
    const lines = [
      `scale harness, mode ${o.mode}${o.take ? "" : ", no take at adoption"}${o.align ? "" : ", ticks unaligned"}: ${o.hosts} hosts × ${o.slots} slots, backlog ${o.backlog}, ${o.rate} runs/s offered${o.rampS > 0 ? ` (ramped over ${o.rampS} s)` : ""}, tasks ${o.taskMs} ms mean, ${o.seconds} s measured; redis-server's CPU priority ${redisPriority}`,
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
    // A stopped worker exits on its own (with its CPU profile under `node --cpu-prof`).
    await Promise.race([Promise.all(h.workers.map((w) => (w.child.exitCode === null ? new Promise((r) => w.child.once("exit", r)) : undefined))), sleep(10_000)]);
    for (const w of h.workers) if (w.child.exitCode === null) w.child.kill();
    await h.nats?.close().catch(() => undefined);
    for (const c of conns) c.disconnect();
    for (const b of brokers.reverse()) await b.stop();
  }
}

async function arrive(h: Harness): Promise<void> {
  const host = h.hostNames[Math.floor(Math.random() * h.hostNames.length)] as string;
  const adopter = h.adopter as RedisClusterState;
  const kind = arrivalKind(Math.random(), Math.random());
  const seq = ++h.seq;
  const run = `a${String(seq).padStart(8, "0")}`;
  const log: RunLog = { run, kind, seq, addedAt: 0, claims: [], measured: h.measuring };
  h.runs.set(run, log);
  try {
    const p = { run, ...kind, adoptedBy: host, adoptedAt: Date.now(), record: "" };
    // As adoption does: taken at once where a pass would give it to its adopter (not in herd
    // mode, the way before); otherwise on the list, and the adopting host's dispatcher looks.
    const taken = h.o.mode === "wake" && h.o.take ? await adopter.addPendTaking(p) : (await adopter.addPend(p), undefined);
    log.addedAt = mono();
    if (taken !== undefined) {
      log.taken = true;
      log.claims.push({ host, token: taken.token, at: log.addedAt });
      h.workerOf(host)?.send({ t: "took", host, run, token: taken.token });
    } else h.kick(host);
    h.told();
  } catch (e) {
    h.errors.push(String(e));
  }
}

type Sum = DispatchSum;

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

/** Raises redis-server's CPU priority (its pid from INFO); says what it did, or why not (not root). */
async function raisePriority(admin: Redis): Promise<string> {
  const pid = Number(/process_id:(\d+)/.exec(await admin.info("server"))?.[1]);
  try {
    setPriority(pid, -10);
    return "raised (nice −10)";
  } catch (e) {
    return `as the harness's (could not raise it: ${e instanceof Error ? e.message : String(e)})`;
  }
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
    take: arg(argv, "take", 1) !== 0,
    align: arg(argv, "align", 1) !== 0,
    redisPriority: arg(argv, "redis-priority", 1) !== 0,
    slots: arg(argv, "slots", 4),
    taskMs: arg(argv, "task-ms", 400),
    rampS: Math.min(5, Math.max(0, arg(argv, "ramp", 0))),
    workers: arg(argv, "workers", Math.min(4, Math.ceil(arg(argv, "hosts", 500) / 125))),
    sharedConnections: arg(argv, "shared-connections", Math.ceil(8 / Math.max(1, Math.min(4, Math.ceil(arg(argv, "hosts", 500) / 125))))),
    dir,
    progress: (l) => process.stderr.write(`  … ${l}\n`),
  });
  process.stdout.write(r.text + "\n");
  return r.violations.length === 0 ? 0 : 1;
}
