/**
 * A real Redis Cluster for tests, made by hand (CLUSTER ADDSLOTS, MEET, REPLICATE): node A
 * owns only the slots of the floe clusters named, node B every other slot, and optionally
 * node R replicates A. So a key outside a floe cluster's slot lives on B, and a failover of
 * A's slots can be made on R (CLUSTER FAILOVER TAKEOVER).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { redisKeys } from "../../store/redis-keys.js";
import { until } from "./hub.js";
import { startRedis, type Broker } from "./servers.js";

export interface ClusterNode {
  readonly broker: Broker;
  readonly admin: Redis;
}

export interface RedisClusterForTest {
  readonly a: ClusterNode;
  readonly b: ClusterNode;
  readonly replica: ClusterNode | undefined;
  /** The slots A owns: those of the floe clusters named. */
  readonly slots: ReadonlySet<number>;
  stop(): Promise<void>;
}

async function clusterNode(dir: string, started: ClusterNode[]): Promise<ClusterNode> {
  mkdirSync(dir, { recursive: true });
  const broker = await startRedis(dir, ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf"), "--cluster-node-timeout", "2000"]);
  const admin = new Redis(broker.url);
  admin.on("error", () => undefined);
  const node = { broker, admin };
  started.push(node);
  return node;
}

/** Slot ranges [from, to] covering 0…16383 but `mine`. */
function otherRanges(mine: ReadonlySet<number>): [number, number][] {
  const out: [number, number][] = [];
  let from: number | undefined;
  for (let s = 0; s <= 16384; s++) {
    const free = s < 16384 && !mine.has(s);
    if (free && from === undefined) from = s;
    if (!free && from !== undefined) {
      out.push([from, s - 1]);
      from = undefined;
    }
  }
  return out;
}

async function clusterInfo(n: ClusterNode): Promise<string> {
  return String(await n.admin.call("CLUSTER", "INFO"));
}

export async function startRedisCluster(dir: string, floeClusters: readonly string[], o: { replica?: boolean } = {}): Promise<RedisClusterForTest> {
  const started: ClusterNode[] = [];
  const stop = async (): Promise<void> => {
    for (const n of started) n.admin.disconnect();
    await Promise.all(started.map((n) => n.broker.stop()));
  };
  try {
    const a = await clusterNode(join(dir, "a"), started);
    const b = await clusterNode(join(dir, "b"), started);
    const replica = o.replica === true ? await clusterNode(join(dir, "r"), started) : undefined;
    const slots = new Set<number>();
    for (const name of floeClusters) slots.add(Number(await a.admin.call("CLUSTER", "KEYSLOT", redisKeys(name).prefix)));
    await a.admin.call("CLUSTER", "ADDSLOTS", ...[...slots].map(String));
    for (const [from, to] of otherRanges(slots)) await b.admin.call("CLUSTER", "ADDSLOTSRANGE", String(from), String(to));
    await a.admin.call("CLUSTER", "MEET", "127.0.0.1", String(b.broker.port));
    if (replica !== undefined) await replica.admin.call("CLUSTER", "MEET", "127.0.0.1", String(a.broker.port));
    const nodes = replica === undefined ? 2 : 3;
    for (const n of started) await until(async () => {
      const info = await clusterInfo(n);
      return /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${nodes}\\b`).test(info);
    }, 20_000, "the Redis Cluster to be up");
    if (replica !== undefined) {
      const aId = String(await a.admin.call("CLUSTER", "MYID"));
      await replica.admin.call("CLUSTER", "REPLICATE", aId);
      await until(async () => /master_link_status:up/.test(await replica.admin.info("replication")), 20_000, "the replica to follow A");
    }
    return { a, b, replica, slots, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
