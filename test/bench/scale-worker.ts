/**
 * A worker process of the scale harness (scale.ts): a share of the simulated hosts. Each is
 * the real dispatcher (hub/dispatcher.ts) on the real Redis cluster state, with its own
 * wake-up connection, heartbeats and reaps at the real lease's period, on the instants real
 * hosts tick on (hub/tick-phase.ts; or each at its own phase, `--align=0`); its tasks are timers (no processes, no files). It tells the harness what it
 * claimed and released (scale-protocol.ts); the harness adopts the runs and checks.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { Redis } from "ioredis";
import { Dispatcher } from "../../hub/dispatcher.js";
import { DEFAULT_LEASE_MS, Lease } from "../../hub/lease.js";
import { nextTickAt, tickPhase } from "../../hub/tick-phase.js";
import { Publisher } from "../../hub/publisher.js";
import { RunTable } from "../../hub/run-table.js";
import type { RunEvent } from "../../hub/types.js";
import { LocalBus } from "../../store/bus.js";
import { RedisClusterState } from "../../store/redis-state.js";
import { hostName, hostTags, mono, type ClaimNote, type DispatchSum, type EndNote, type FromWorker, type ToWorker, type WorkerConfig } from "./scale-protocol.js";

const log = pino({ level: "silent" });
const lease = new Lease(DEFAULT_LEASE_MS, { renew: async () => "renewed", probe: async () => undefined, standDown: () => undefined, regained: async () => undefined, selfFence: true, log });

function send(m: FromWorker): void {
  process.send?.(m);
}

class Worker {
  readonly hosts = new Map<string, SimHost>();
  readonly claims: ClaimNote[] = [];
  readonly ends: EndNote[] = [];
  readonly reaped: string[] = [];
  readonly errors: string[] = [];
  readonly heartbeatMs: number[] = [];
  measuring = false;
  nats: NatsConnection | undefined;
  readonly conns: Redis[] = [];
  private flusher: NodeJS.Timeout | undefined;

  constructor(readonly c: WorkerConfig) {}

  async open(): Promise<void> {
    for (let i = 0; i < Math.max(1, this.c.connections); i++) this.conns.push(new Redis(this.c.redisUrl, { enableOfflineQueue: true, commandTimeout: 10_000 }));
    this.nats = await connect({ servers: this.c.natsUrl });
    this.c.hosts.forEach((i, k) => {
      const name = hostName(i);
      this.hosts.set(name, new SimHost(name, hostTags(i), this, this.conns[k % this.conns.length] as Redis));
    });
    if (this.c.mode === "herd") {
      const sub = this.nats.subscribe(this.c.subject);
      void (async () => {
        for await (const _ of sub) for (const x of this.hosts.values()) x.dispatcher.kick();
      })();
    }
    await Promise.all([...this.hosts.values()].map((x) => x.heartbeat()));
    this.flusher = setInterval(() => this.flush(), 50);
  }

  /** A pend added or a run ended: in herd mode every host hears of it (the run events over NATS). */
  told(): void {
    this.nats?.publish(this.c.subject, "x");
  }

  flush(): void {
    if (this.claims.length + this.ends.length + this.reaped.length + this.errors.length === 0) return;
    send({ t: "events", claims: this.claims.splice(0), ends: this.ends.splice(0), reaped: this.reaped.splice(0), errors: this.errors.splice(0) });
  }

  sum(): DispatchSum {
    const s: DispatchSum = { passes: 0, snapshots: 0, wakesSent: 0, woken: 0, claimed: 0, conflicts: 0 };
    for (const x of this.hosts.values()) for (const k of Object.keys(s) as (keyof DispatchSum)[]) s[k] += x.dispatcher.stats[k];
    return s;
  }

  async stop(): Promise<void> {
    // Bounded: a report is worth more than a clean stop of a host that hangs.
    await Promise.race([Promise.all([...this.hosts.values()].map((x) => x.stop())), new Promise((r) => setTimeout(r, 10_000))]);
    if (this.flusher !== undefined) clearInterval(this.flusher);
    this.flush();
    send({ t: "stopped", heartbeatMs: this.heartbeatMs });
    await this.nats?.close().catch(() => undefined);
    for (const c of this.conns) c.disconnect();
  }
}

class SimHost {
  readonly state: RedisClusterState;
  readonly dispatcher: Dispatcher;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Runs taken at adoption whose claim the harness noted already. */
  private readonly noted = new Set<string>();
  started = false;
  running = 0;

  constructor(
    readonly name: string,
    readonly tags: readonly string[],
    private readonly w: Worker,
    redis: Redis,
  ) {
    this.state = new RedisClusterState(redis, { cluster: w.c.cluster, ownsConnection: false });
    this.dispatcher = new Dispatcher({
      state: this.state,
      table: new RunTable(),
      host: name,
      publisher: new Publisher(new LocalBus<RunEvent>(), undefined, undefined),
      log,
      mode: w.c.mode,
      mayClaim: () => true,
      activate: async (run, token) => this.activate(run, token),
    });
  }

  async heartbeat(): Promise<void> {
    const t0 = performance.now();
    await this.state.heartbeat({ name: this.name, tags: this.tags, slots: this.w.c.slots, running: this.running, lastSeen: Date.now(), startedAt: 0 }, lease.ms, lease.marginMs);
    if (this.w.measuring) this.w.heartbeatMs.push(performance.now() - t0);
  }

  /** Heartbeats, reaps and the safety pass at the real hosts' period, each host at its own phase. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const every = lease.renewEveryMs;
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        await this.heartbeat();
        for (const lost of await this.state.reapDead({ ifDue: true })) this.w.reaped.push(`${lost.run} of ${lost.host}`);
        if (this.dispatcher.mode === "herd") this.dispatcher.kick();
        else this.dispatcher.kickIfQuiet(5000);
      } catch (e) {
        this.w.errors.push(String(e));
      }
      if (this.stopped) return;
      if (!this.w.c.align) this.timer = setTimeout(() => void tick(), every);
      else {
        const at = nextTickAt(Date.now(), lastTickAt, every, tickPhase(this.name, this.state.hostsAtHeartbeat()));
        this.timer = setTimeout(() => {
          lastTickAt = at;
          void tick();
        }, at - Date.now());
      }
    };
    let lastTickAt: number | undefined;
    // Hosts of a real cluster do not all start in the same millisecond: each at its own
    // moment, its first pass (with the host table, which later passes cache) included; then
    // (align) on its phase's instants.
    const phase = Math.random() * every;
    this.timer = setTimeout(() => {
      this.dispatcher.open();
      void tick();
    }, phase);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.dispatcher.stop();
    await this.state.close();
  }

  /** A run taken as it was adopted: activated as a claim's (the harness noted its claim when addPendTaking answered). */
  took(run: string, token: number): void {
    this.noted.add(run);
    this.dispatcher.took({ run, token, record: "" });
  }

  private activate(run: string, token: number): void {
    if (run.startsWith("b")) return; // the backlog nobody can take: never claimed
    if (!this.noted.delete(run)) this.w.claims.push({ run, host: this.name, token, at: mono() });
    this.running++;
    const ms = -Math.log(1 - Math.random()) * this.w.c.taskMs;
    setTimeout(() => {
      const releaseAt = mono();
      void this.state
        .releaseCounted(run, token)
        .then(({ unattended }) => {
          this.running--;
          this.w.ends.push({ run, releaseAt, endedAt: mono() });
          if (unattended !== 0) this.dispatcher.kick(); // its slot is free (the hub's afterEnd)
          this.w.told();
        })
        .catch((e: unknown) => this.w.errors.push(String(e)));
    }, ms);
  }
}

let worker: Worker | undefined;

process.on("message", (m: ToWorker) => {
  void (async () => {
    try {
      if (m.t === "config") {
        worker = new Worker(m.config);
        await worker.open();
        send({ t: "ready" });
        return;
      }
      const w = worker;
      if (w === undefined) return;
      if (m.t === "start") {
        if (m.host !== undefined) w.hosts.get(m.host)?.start();
        else for (const x of w.hosts.values()) x.start();
      } else if (m.t === "took") {
        w.hosts.get(m.host)?.took(m.run, m.token);
      } else if (m.t === "kick") {
        for (const h of m.hosts) w.hosts.get(h)?.dispatcher.kick();
      } else if (m.t === "measuring") {
        w.measuring = m.on;
      } else if (m.t === "sample") {
        const u = process.cpuUsage();
        send({ t: "sample", id: m.id, sum: w.sum(), cpuUs: u.user + u.system });
      } else if (m.t === "stop") {
        await w.stop();
        process.disconnect();
        // Its hosts are stopped; what is left open (connections) must not keep it alive, and
        // exiting on its own lets `node --cpu-prof` write its profile.
        process.exit(0);
      }
    } catch (e) {
      worker?.errors.push(String(e));
    }
  })();
});
