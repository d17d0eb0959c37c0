/**
 * `--redis=redis+cluster://NODE:PORT,…` (store/redis-slot-owner.ts): on a real Redis Cluster
 * whose node A owns only the floe clusters' slots and node B every other slot, a host seeded
 * with B alone finds A and runs the whole state contract there; a plain redis:// URL to B
 * fails with an error that names redis+cluster://; when A's replica takes A's slots over, the
 * state follows it, and fencing tokens carry the new primary's higher config epoch; and a
 * real `floe serve` runs a flow to its end on redis+cluster://.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import type { ClusterState } from "../../store/cluster-state.js";
import { DEFAULT_CLUSTER } from "../../store/cluster-name.js";
import { openRedis } from "../../store/redis-connect.js";
import { redisKeys } from "../../store/redis-keys.js";
import { parseClusterNodes } from "../../store/redis-slot-owner.js";
import { redisTarget } from "../../store/redis-url.js";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";
import { startRedisCluster } from "../helpers/redis-cluster.js";
import { startNats } from "../helpers/servers.js";
import { assign, contractSuite, host, pend } from "../helpers/state-contract.js";

const TOKEN_SPLIT = 2 ** 32;

t.test("cluster URLs and CLUSTER NODES lines: parsed, or refused saying what is expected", async (t) => {
  t.same(redisTarget("redis+cluster://ada:p%40ss@h1:7000,h2,[::1]:7001"), { kind: "cluster", options: { seeds: [{ host: "h1", port: 7000 }, { host: "h2", port: 6379 }, { host: "::1", port: 7001 }], username: "ada", password: "p@ss" } });
  t.same(redisTarget("redis+cluster://h1:7000/"), { kind: "cluster", options: { seeds: [{ host: "h1", port: 7000 }] } });
  t.throws(() => redisTarget("redis+cluster://h1:7000/db"), /expected redis\+cluster:\/\/\[user:pass@\]HOST:PORT/, "no path");
  t.throws(() => redisTarget("redis+cluster://h1:0"), /node "h1:0" is not HOST:PORT/);
  const nodes = parseClusterNodes(
    [
      "07c3 127.0.0.1:30004@31004,node-4 slave e7d1 0 1426238317239 4 connected",
      "67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922",
      "e7d1 127.0.0.1:30001@31001 myself,master - 0 0 5 connected 0-5460 [5461->-67ed]",
      "6ec2 [::1]:30003@31003 master,fail - 1426238316232 1426238315000 3 disconnected 10923 10925-16383",
      "",
    ].join("\n"),
  );
  t.same(
    nodes.map((n) => [n.host, n.port, n.myself, n.primary, n.failing, n.epoch, n.slots]),
    [
      ["127.0.0.1", 30004, false, false, false, 4, []],
      ["127.0.0.1", 30002, false, true, false, 2, [[5461, 10922]]],
      ["127.0.0.1", 30001, true, true, false, 5, [[0, 5460]]],
      ["::1", 30003, false, true, true, 3, [[10923, 10923], [10925, 16383]]],
    ],
    "addresses (with a hostname, IPv6), flags, config epochs, slots and ranges; a slot being migrated is not counted",
  );
});

t.test("the state contract through redis+cluster://, seeded with a node that does not own the slot", async (t) => {
  const names = Array.from({ length: 400 }, (_, i) => `cc${process.pid}-${i}`);
  const cluster = await startRedisCluster(t.testdir({}), [...names, "plain"]);
  t.teardown(() => cluster.stop());
  const seed = `redis+cluster://127.0.0.1:${cluster.b.broker.port}`;

  const plain = await openRedis(cluster.b.broker.url, { cluster: "plain" });
  t.teardown(() => plain.close());
  await t.rejects(plain.heartbeat(host("h1"), 60_000), /redis\+cluster:\/\//, "a plain URL to a node that does not own the slot: an error that says what to use");

  let next = 0;
  contractSuite(t, async (t) => {
    const name = names[next++];
    if (name === undefined) throw new Error("more floe clusters opened than names has slots for");
    const s = await openRedis(seed, { cluster: name });
    t.teardown(() => s.close());
    return s;
  });
});

/** Retries `f` while the state is unavailable (it fails over), for up to 30 s. */
async function retried<T>(f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof Error && e.name === "RedisUnavailableError") || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

t.test("a replica that takes the slot over: the state follows it, and tokens carry its higher config epoch", async (t) => {
  const name = `fo${process.pid}`;
  const cluster = await startRedisCluster(t.testdir({}), [name], { replica: true });
  t.teardown(() => cluster.stop());
  const { a, b, replica } = cluster;
  if (replica === undefined) throw new Error("no replica");
  const s: ClusterState = await openRedis(`redis+cluster://127.0.0.1:${b.broker.port},127.0.0.1:${a.broker.port}`, { cluster: name });
  t.teardown(() => s.close());
  const epoch0 = (await s.failoverEpoch?.()) ?? -1;
  t.ok(epoch0 >= 0, `A's config epoch: ${epoch0}`);
  await s.heartbeat(host("h1", 4), 60_000);
  const p1 = pend("p1");
  await s.addPend(p1);
  const [c1] = await s.claim([assign(p1, "h1")]);
  t.ok(c1 !== undefined && Math.floor(c1.token / TOKEN_SPLIT) === epoch0, `the claim's token ${c1?.token} carries A's epoch`);

  // The replica has what A wrote, then takes the slot over (no vote: a two-primary cluster has no majority without A).
  await until(async () => {
    const offset = (text: string, k: string): string | undefined => new RegExp(`${k}:(\\d+)`).exec(text)?.[1];
    return offset(String(await a.admin.info("replication")), "master_repl_offset") === offset(String(await replica.admin.info("replication")), "slave_repl_offset");
  }, 20_000, "the replica to have A's writes");
  await replica.admin.call("CLUSTER", "FAILOVER", "TAKEOVER");
  await until(async () => /role:master/.test(String(await replica.admin.info("replication"))), 20_000, "the replica to be the primary");

  const held = await retried(async () => s.hold({ run: "p2", host: "h1", flowKey: "f/1", resources: [] }));
  const epoch1 = (await s.failoverEpoch?.()) ?? -1;
  t.ok(epoch1 > epoch0, `the new primary's config epoch ${epoch1} is above A's ${epoch0}`);
  t.ok(held !== undefined && held > (c1?.token ?? Infinity) && Math.floor(held / TOKEN_SPLIT) === epoch1, `a token handed out after the takeover (${held}) carries the new epoch: above every token of A's`);
  const phase = redisKeys(name).table("phase");
  t.same(await replica.admin.hmget(phase, "p1", "p2"), ["active", "active"], "the state is on the new primary: the claim made on A, and the hold made since");
  t.equal(await s.isCurrent("p1", c1?.token ?? -1), true, "the claim made on A is still current there");
});

t.test("a floe host on redis+cluster:// runs a flow to its end", async (t) => {
  const dir = t.testdir({});
  const cluster = await startRedisCluster(join(dir, "redis"), [DEFAULT_CLUSTER]);
  t.teardown(() => cluster.stop());
  const nats = await startNats(dir);
  t.teardown(() => nats.stop());
  const conf = join(dir, "flows.yml");
  await writeFile(conf, "flows:\n  - id: hello\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: say, type: exec, listen: trigger.good, opts: {cmd: 'echo hello'}}\n");
  const h = await startFloe({ conf, root: join(dir, "root"), host: "h1", extra: [`--nats=${nats.url}`, `--redis=redis+cluster://127.0.0.1:${cluster.b.broker.port}`] });
  t.teardown(() => h.kill9());
  const r = await h.req("POST", "/flows/hello/runs", {});
  t.equal(r.status, 201, JSON.stringify(r.body));
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
  let state = "";
  await until(async () => {
    const s = await h.req("GET", `/runs/${run}`);
    state = (s.body as { state?: string }).state ?? "";
    return state === "archived";
  }, 30_000, "the run to end");
  t.equal(state, "archived");
  t.equal(await cluster.a.admin.hget(redisKeys(DEFAULT_CLUSTER).table("phase"), run), "done", "its state is on the slot's owner, A");
});
