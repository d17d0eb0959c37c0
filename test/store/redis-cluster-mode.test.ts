/**
 * "One hash slot" (README, Scaling out): every key of a floe cluster is
 * `floe:{<cluster>}:…`, so its scripts and transactions run unchanged on Redis Cluster.
 * Checked on a real two-node Redis Cluster whose first node owns only the slots of the floe
 * clusters this test opens, and whose second owns every other slot: the whole state contract
 * runs on a connection to the first node. A key outside the floe cluster's slot — a script's
 * or a transaction's, declared or not — would live on the second node and be refused
 * (`MOVED`, "non local key", `CROSSSLOT`), failing the contract case that wrote it.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { Redis } from "ioredis";
import { openRedis } from "../../store/redis-connect.js";
import { redisKeys } from "../../store/redis-keys.js";
import { until } from "../helpers/hub.js";
import { startRedis, type Broker } from "../helpers/servers.js";
import { contractSuite } from "../helpers/state-contract.js";

const NAMES = Array.from({ length: 400 }, (_, i) => `rc${process.pid}-${i}`);

const brokers: Broker[] = [];
const admins: Redis[] = [];
t.teardown(async () => {
  for (const a of admins) a.disconnect();
  await Promise.all(brokers.map((b) => b.stop()));
});

async function clusterNode(dir: string): Promise<{ broker: Broker; admin: Redis }> {
  mkdirSync(dir, { recursive: true });
  const broker = await startRedis(dir, ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf"), "--cluster-node-timeout", "2000"]);
  brokers.push(broker);
  const admin = new Redis(broker.url);
  admins.push(admin);
  return { broker, admin };
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

t.test("the state contract on a Redis Cluster node that owns only the floe clusters' slots", async (t) => {
  const dir = t.testdir({});
  const a = await clusterNode(join(dir, "a"));
  const b = await clusterNode(join(dir, "b"));
  const mine = new Set<number>();
  for (const name of NAMES) mine.add(Number(await a.admin.call("CLUSTER", "KEYSLOT", redisKeys(name).prefix)));
  t.ok(mine.size > 0 && mine.size <= NAMES.length, `${mine.size} slots for ${NAMES.length} floe clusters; the other ${16384 - mine.size} are the second node's`);
  await a.admin.call("CLUSTER", "ADDSLOTS", ...[...mine].map(String));
  for (const [from, to] of otherRanges(mine)) await b.admin.call("CLUSTER", "ADDSLOTSRANGE", String(from), String(to));
  await a.admin.call("CLUSTER", "MEET", "127.0.0.1", String(b.broker.port));
  await until(async () => /cluster_state:ok/.test(String(await a.admin.call("CLUSTER", "INFO"))) && /cluster_known_nodes:2/.test(String(await a.admin.call("CLUSTER", "INFO"))), 20_000, "the two-node cluster to be up");
  await until(async () => /cluster_state:ok/.test(String(await b.admin.call("CLUSTER", "INFO"))), 20_000, "the second node to see it up");

  // The check is real: a key outside the slot is refused on this connection.
  const stray = await a.admin.set("floe:not-tagged", "x").then(
    () => "accepted",
    (e: unknown) => String(e),
  );
  t.match(stray, /MOVED/, "a key of another slot is the other node's");

  let next = 0;
  contractSuite(t, async (t) => {
    const name = NAMES[next++];
    if (name === undefined) throw new Error("more floe clusters opened than NAMES has slots for");
    const s = await openRedis(a.broker.url, { cluster: name });
    t.teardown(() => s.close());
    return s;
  });
});
