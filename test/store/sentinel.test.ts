/**
 * `--redis=redis+sentinel://…/MASTER` (DESIGN §6.1): the cluster state finds its primary
 * through Redis Sentinel and follows a failover. A real primary, replica and sentinel, all
 * started here.
 */
import t from "tap";
import { Redis } from "ioredis";
import { openRedis } from "../../store/redis-connect.js";
import { redisTarget } from "../../store/redis-url.js";
import { until } from "../helpers/hub.js";
import { startRedis, startSentinel } from "../helpers/servers.js";
import { host, pend } from "../helpers/state-contract.js";

t.test("sentinel URLs: parsed, or refused saying what is expected", async (t) => {
  t.same(redisTarget("redis://127.0.0.1:6379"), { kind: "url", url: "redis://127.0.0.1:6379" });
  t.same(redisTarget("redis+sentinel://ada:p%40ss@h1:26379,h2,[::1]:26380/mymaster"), {
    kind: "sentinel",
    options: { sentinels: [{ host: "h1", port: 26379 }, { host: "h2", port: 26379 }, { host: "::1", port: 26380 }], name: "mymaster", username: "ada", password: "p@ss" },
  });
  t.throws(() => redisTarget("redis+sentinel://h1:26379"), /expected redis\+sentinel:\/\/.*MASTER/, "no master name");
  t.throws(() => redisTarget("redis+sentinel://h1:99999/m"), /not HOST:PORT/);
});

t.test("the state through a sentinel, and across a failover of its primary", async (t) => {
  const dir = t.testdir({});
  const primary = await startRedis(`${dir}/p`);
  t.teardown(() => primary.stop());
  const replica = await startRedis(`${dir}/r`, ["--replicaof", "127.0.0.1", String(primary.port)]);
  t.teardown(() => replica.stop());
  const sentinel = await startSentinel(`${dir}/s`, primary.port);
  t.teardown(() => sentinel.stop());
  const admin = new Redis(sentinel.port, "127.0.0.1");
  t.teardown(() => admin.disconnect());
  // The sentinel must have found the replica before a failover can promote it.
  await until(async () => ((await admin.call("SENTINEL", "replicas", "floe-primary")) as unknown[]).length > 0, 20_000, "the sentinel to see the replica");

  const s = await openRedis(sentinel.url, { cluster: "sentinel-test", commandTimeoutMs: 1000 });
  t.teardown(() => s.close());
  await s.heartbeat(host("h1", 2), 60_000);
  t.equal(await s.addPend(pend("before")), true, "a pend through the sentinel's primary");
  // What the failover must keep: acknowledged by the replica before the primary dies.
  await until(async () => Number(await s.redis.call("WAIT", 1, 500)) >= 1, 10_000, "the replica to acknowledge the writes");

  await primary.kill();
  let addr: unknown;
  await until(async () => {
    addr = await admin.call("SENTINEL", "get-master-addr-by-name", "floe-primary");
    return Array.isArray(addr) && addr[1] === String(replica.port);
  }, 30_000, "the sentinel to promote the replica");
  t.pass(`the replica on port ${replica.port} is the primary now`);

  let added = false;
  await until(async () => (added = await s.addPend(pend("after")).catch(() => false)), 30_000, "the state to work through the new primary");
  t.ok(added, "the same client carries on through the new primary");
  const snap = await s.snapshot();
  t.same(snap?.pends.map((p) => p.run), ["before", "after"], "the pend written before the failover survived it");
});
