/**
 * The faults a chaos run injects, one at a time, at seeded moments:
 * - host-kill: kill -9 of a host, down for a while (sometimes past its lease), then restarted
 *   with the same name and root (its running tasks must die with it: checked within 5 s);
 * - host-freeze: SIGSTOP of a host and its task processes (a paused machine) past its
 *   lease, then SIGCONT;
 * - nats-restart, redis-restart: kill -9 of the broker, down for a while, restarted with
 *   its data on the same port;
 * - disk-full: the store of one host (a small tmpfs) filled up, then freed;
 * and with `--partitions`, where every host reaches each broker through a fault proxy of its
 * own (test/helpers/fault-proxy.ts), partitions of one host while it stays awake:
 * - redis-cut, nats-cut, both-cut: its link to Redis, to NATS, or both black-holed (bytes
 *   held, delivered on healing);
 * - oneway-cut: Redis's replies to it held, its requests getting through;
 * - lossy-redis: its Redis link at 200 ms ± 100 ms with 5 % of chunks delayed a
 *   retransmission more.
 * A clock step is not injected: floe's leases use Redis's clock, and stepping the machine's
 * clock would disturb everything else running on it (no per-process fake clock here).
 */
import { readdir, readFile, unlink } from "node:fs/promises";
import { fillDisk } from "../helpers/disk.js";
import type { HostSpec, OwnedCluster } from "../helpers/cluster.js";
import type { FaultProxy } from "../helpers/fault-proxy.js";
import type { ChaosClient } from "./client.js";
import { mulberry32, type Rng } from "./prng.js";

export const PARTITION_KINDS = ["redis-cut", "nats-cut", "both-cut", "oneway-cut", "lossy-redis"] as const;
export const FAULT_KINDS = ["host-kill", "host-freeze", "nats-restart", "redis-restart", "disk-full", "clock-step", ...PARTITION_KINDS] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** A host's own ways to the brokers, when the run injects partitions. */
export interface HostLinks {
  readonly redis: FaultProxy;
  readonly nats: FaultProxy;
}

export interface FaultRecord {
  readonly kind: FaultKind;
  readonly target: string;
  /** Wall clock (as the tasks' `date +%s%N`) just before the fault. */
  readonly atNs: bigint;
  /** When it was healed (host serving again, broker back, disk freed, host woken). */
  healedNs?: bigint;
  readonly heldMs: number;
  /** host-kill: task processes of the host still alive 5 s after the kill (expected none). */
  survivors?: number[];
  error?: string;
}

export interface FaultEnv {
  readonly cluster: OwnedCluster;
  readonly client: ChaosClient;
  readonly hosts: readonly HostSpec[];
  readonly leaseS: number;
  /** The tmpfs root of the disk-fault host, or undefined when none could be mounted. */
  readonly disk?: { readonly host: string; readonly root: string };
  readonly log: (line: string) => void;
  /** Finds the live task processes of a host. */
  readonly tasksOf?: (host: string) => Promise<number[]>;
  /** Each host's proxies to the brokers: partitions can be injected only with them. */
  readonly links?: ReadonlyMap<string, HostLinks>;
}

export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every descendant of `pid` (task processes live in their own groups but are children). */
async function descendants(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = await readFile(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(p));
      children.set(ppid, list);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // exited meanwhile
    }
  }
}

export class Faults {
  readonly records: FaultRecord[] = [];
  readonly skipped = new Map<FaultKind, string>();
  /** Hosts killed and not yet restarted (restarted at the end if a fault failed half-way). */
  private readonly down = new Set<string>();

  constructor(private readonly env: FaultEnv) {
    this.skipped.set("clock-step", "not injected: leases use Redis's clock, and stepping this shared machine's clock would disturb other work (no per-process fake clock installed)");
    if (env.disk === undefined) this.skipped.set("disk-full", "not injected: needs root to mount a tmpfs for one host's --root");
    if (env.links === undefined) for (const k of PARTITION_KINDS) this.skipped.set(k, "not injected: hosts reach the brokers directly (npm run chaos -- --partitions)");
  }

  kinds(): FaultKind[] {
    return FAULT_KINDS.filter((k) => !this.skipped.has(k));
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of this.kinds()) out[k] = 0;
    for (const r of this.records) if (r.error === undefined) out[r.kind] = (out[r.kind] ?? 0) + 1;
    return out;
  }

  /** Faults in a seeded order (each kind once per round, shuffled), until `stop()`. */
  async schedule(rng: Rng, stop: () => boolean, gapMs: readonly [number, number]): Promise<void> {
    let round: FaultKind[] = [];
    for (;;) {
      await sleep(rng.between(gapMs[0], gapMs[1]));
      if (stop()) return;
      if (round.length === 0) {
        round = this.kinds();
        for (let i = round.length - 1; i > 0; i--) {
          const j = rng.int(0, i);
          [round[i], round[j]] = [round[j] as FaultKind, round[i] as FaultKind];
        }
      }
      await this.inject(round.shift() as FaultKind, rng);
    }
  }

  async inject(kind: FaultKind, rng: Rng): Promise<void> {
    const lease = this.env.leaseS * 1000;
    const c = this.env.cluster;
    const hostNames = this.env.hosts.map((h) => h.name);
    // Draw everything from the seed first, so a failure never shifts the schedule.
    const victim = kind === "disk-full" ? (this.env.disk?.host ?? "") : rng.pick(hostNames);
    const heldMs = Math.round(
      kind === "host-kill"
        ? rng.between(300, 2 * lease + 1000)
        : kind === "host-freeze"
          ? rng.between(lease + 1000, lease + 3000)
          : kind === "disk-full"
            ? rng.between(1500, 4000)
            : kind === "redis-cut" || kind === "both-cut" || kind === "oneway-cut"
              ? rng.between(lease, 2 * lease + 2000) // sometimes within the lease, mostly past it
              : kind === "nats-cut" || kind === "lossy-redis"
                ? rng.between(1500, 5000)
                : rng.between(500, 3000),
    );
    const lossSeed = kind === "lossy-redis" ? rng.next() : 0; // drawn only for it: other kinds keep their schedules
    const target = kind === "nats-restart" ? "nats" : kind === "redis-restart" ? "redis" : victim;
    const rec: FaultRecord = { kind, target, atNs: nowNs(), heldMs };
    this.records.push(rec);
    this.env.log(`fault ${kind} ${target} for ${heldMs} ms`);
    try {
      switch (kind) {
        case "host-kill": {
          await c.kill9(victim);
          this.down.add(victim);
          const killedAt = Date.now();
          const tasksOf = this.env.tasksOf;
          if (tasksOf !== undefined) {
            // Its spawn helper sees the host go and kills the tasks it ran.
            let left = await tasksOf(victim);
            while (left.length > 0 && Date.now() - killedAt < 5000) {
              await sleep(100);
              left = await tasksOf(victim);
            }
            rec.survivors = left;
          }
          await sleep(Math.max(0, heldMs - (Date.now() - killedAt)));
          await this.restart(victim);
          break;
        }
        case "host-freeze": {
          const pid = c.host(victim).child.pid as number;
          this.env.client.avoid.add(victim);
          const frozen = [pid, ...(await descendants(pid))];
          signal(frozen, "SIGSTOP");
          await sleep(heldMs);
          // Whatever was forked just before the stop is frozen too: wake the whole tree.
          signal([...frozen, ...(await descendants(pid))], "SIGCONT");
          this.env.client.avoid.delete(victim);
          break;
        }
        case "nats-restart":
        case "redis-restart": {
          const b = kind === "nats-restart" ? c.nats : c.redis;
          await b.kill();
          await sleep(heldMs);
          await b.restart();
          break;
        }
        case "disk-full": {
          const path = await fillDisk(this.env.disk?.root as string);
          await sleep(heldMs);
          await unlink(path);
          break;
        }
        case "clock-step":
          throw new Error("clock steps are not injected");
        case "redis-cut":
        case "nats-cut":
        case "both-cut":
        case "oneway-cut":
        case "lossy-redis": {
          const links = this.env.links?.get(victim);
          if (links === undefined) throw new Error(`no fault proxies for ${victim}`);
          const cutFromRedis = kind !== "nats-cut";
          // A host without Redis cannot adopt: triggers go elsewhere meanwhile.
          if (cutFromRedis) this.env.client.avoid.add(victim);
          if (kind === "redis-cut" || kind === "both-cut") links.redis.cut();
          if (kind === "nats-cut" || kind === "both-cut") links.nats.cut();
          if (kind === "oneway-cut") links.redis.cutReplies();
          if (kind === "lossy-redis") links.redis.lossy(200, 100, 0.05, mulberry32(Math.floor(lossSeed * 2 ** 31)).next);
          await sleep(heldMs);
          links.redis.heal();
          links.nats.heal();
          this.env.client.avoid.delete(victim);
          break;
        }
      }
      rec.healedNs = nowNs();
    } catch (e) {
      rec.error = String(e);
      this.env.log(`fault ${kind} ${target} failed: ${rec.error}`);
    }
  }

  private async restart(name: string): Promise<void> {
    const spec = this.env.hosts.find((h) => h.name === name);
    if (spec === undefined) throw new Error(`no host ${name}`);
    let last: unknown;
    for (let i = 0; i < 3; i++) {
      try {
        await this.env.cluster.start(spec);
        this.down.delete(name);
        return;
      } catch (e) {
        last = e;
        await sleep(1000);
      }
    }
    throw new Error(`host ${name} did not restart: ${String(last)}`);
  }

  /** Every host back and every broker up, whatever went wrong half-way. */
  async healAll(): Promise<void> {
    for (const n of [...this.down]) await this.restart(n);
  }
}
