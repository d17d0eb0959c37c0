/**
 * "One hash slot" (README, Scaling out): every key of a floe cluster is
 * `floe:{<cluster>}:…`, so its scripts and transactions run unchanged on Redis Cluster.
 * Checked on a real two-node Redis Cluster whose first node owns only the slots of the floe
 * clusters this test opens, and whose second owns every other slot: the whole state contract
 * runs on a connection to the first node. A key outside the floe cluster's slot — a script's
 * or a transaction's, declared or not — would live on the second node and be refused
 * (`MOVED`, "non local key", `CROSSSLOT`), failing the contract case that wrote it.
 */
import t from "tap";
import { openRedis } from "../../store/redis-connect.js";
import { startRedisCluster } from "../helpers/redis-cluster.js";
import { contractSuite } from "../helpers/state-contract.js";

const NAMES = Array.from({ length: 400 }, (_, i) => `rc${process.pid}-${i}`);

t.test("the state contract on a Redis Cluster node that owns only the floe clusters' slots", async (t) => {
  const cluster = await startRedisCluster(t.testdir({}), NAMES);
  t.teardown(() => cluster.stop());
  const { a } = cluster;
  t.ok(cluster.slots.size > 0 && cluster.slots.size <= NAMES.length, `${cluster.slots.size} slots for ${NAMES.length} floe clusters; the other ${16384 - cluster.slots.size} are the second node's`);

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
