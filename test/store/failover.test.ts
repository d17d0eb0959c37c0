/**
 * The fencing token's failover epoch, and what a host registers again after a failover
 * (store/redis-scripts.ts RESYNC, hub/failover.ts): first on one redis-server whose epoch
 * the test sets, then with writes a real primary acknowledged and its replica never got.
 * The replica is kept from them deterministically: the primary is given a password (its
 * open connections stay authenticated) and the replica's link is killed, so the replica
 * can not reconnect; writes are made, `WAIT` shows them unreplicated, the primary is killed
 * and a sentinel promotes the replica. (A proxy on the replication link would not do:
 * Sentinel repoints a replica that replicates from another address than the primary's.)
 */
import t from "tap";
import { Redis } from "ioredis";
import { openRedis } from "../../store/redis-connect.js";
import { RedisClusterState, RedisUnavailableError } from "../../store/redis-state.js";
import { until } from "../helpers/hub.js";
import { startRedis, startSentinel } from "../helpers/servers.js";
import { assign, host, pend } from "../helpers/state-contract.js";

const SPLIT = 2 ** 32;
const LEASE = 400;
const MARGIN = 100;

t.test("tokens: epoch × 2^32 + sequence, above every earlier token after an epoch change; a stale epoch is refused", async (t) => {
  const redis = await startRedis(t.testdir({}));
  t.teardown(() => redis.stop());
  let epoch = 0;
  const conn = new Redis(redis.port, "127.0.0.1");
  t.teardown(() => conn.disconnect());
  const s = new RedisClusterState(conn, { cluster: "epoch", epoch: async () => epoch, ownsConnection: false });
  await until(() => conn.status === "ready", 5000, "the connection");
  await s.heartbeat(host("h1", 10), LEASE * 100, MARGIN);
  const tokens: number[] = [];
  for (const run of ["a", "b"]) {
    await s.addPend(pend(run));
    const [c] = await s.claim([assign(pend(run), "h1")]);
    tokens.push(c?.token ?? -1);
  }
  t.same(tokens, [1, 2], "epoch 0: the sequence alone, as with plain redis://");

  // A failover: the same Redis, the epoch the sentinels would report now.
  epoch = 5;
  conn.disconnect(true);
  await until(() => conn.status === "ready", 5000, "the reconnection");
  await s.heartbeat(host("h1", 10), LEASE, MARGIN);
  await s.addPend(pend("c"));
  t.same(await s.claim([assign(pend("c"), "h1")]), [], "nothing is claimed while hosts register again after the failover");
  const held = await s.hold({ run: "b", host: "h1", flowKey: "f/1", resources: [] });
  t.equal(held, 5 * SPLIT + 1, "a hold at the new epoch: epoch × 2^32 + 1 (the sequence starts again)");
  await new Promise((r) => setTimeout(r, LEASE + MARGIN + 50));
  await s.heartbeat(host("h1", 10), LEASE, MARGIN);
  const [c] = await s.claim([assign(pend("c"), "h1")]);
  t.equal(c?.token, 5 * SPLIT + 2, "after the settling time, claims carry the new epoch");
  t.ok((c?.token ?? 0) > Math.max(...tokens), "above every token of the epoch before");
  t.ok(Number.isSafeInteger(c?.token), "exact in a JavaScript number");
  t.ok(await s.isCurrent("c", c?.token ?? 0), "the token reads back exactly");
  t.ok(await s.release("c", c?.token ?? 0), "and releases with it");

  // A host that learned an older epoch (a sentinel behind the others) is refused, not served.
  const conn2 = new Redis(redis.port, "127.0.0.1");
  t.teardown(() => conn2.disconnect());
  const stale = new RedisClusterState(conn2, { cluster: "epoch", epoch: async () => 4, ownsConnection: false });
  await until(() => conn2.status === "ready", 5000, "the second connection");
  await t.rejects(stale.heartbeat(host("h2", 1), LEASE, MARGIN), RedisUnavailableError, "a heartbeat at an older epoch is refused");
  await t.rejects(stale.claim([assign(pend("a"), "h2")]), RedisUnavailableError, "and a claim");

  // Plain redis:// (no epoch): tokens keep the largest epoch seen, so they never go back.
  const plain = new RedisClusterState(conn2, { cluster: "epoch", ownsConnection: false });
  await plain.addPend(pend("d"));
  const [d] = await plain.claim([assign(pend("d"), "h1")]);
  t.equal(d?.token, 5 * SPLIT + 3, "a host without the epoch still gets tokens above the failover's");
});

t.test("writes the old primary acknowledged and the replica never got: registered again, never a reused token", async (t) => {
  const dir = t.testdir({});
  const primary = await startRedis(`${dir}/p`);
  t.teardown(() => primary.stop());
  const replica = await startRedis(`${dir}/r`, ["--replicaof", "127.0.0.1", String(primary.port)]);
  t.teardown(() => replica.stop());
  const sentinel = await startSentinel(`${dir}/s`, primary.port);
  t.teardown(() => sentinel.stop());
  const admin = new Redis(sentinel.port, "127.0.0.1");
  t.teardown(() => admin.disconnect());
  await until(async () => ((await admin.call("SENTINEL", "replicas", "floe-primary")) as unknown[]).length > 0, 20_000, "the sentinel to see the replica");

  const s = await openRedis(sentinel.url, { cluster: "lost", commandTimeoutMs: 1000 });
  t.teardown(() => s.close());
  t.equal(await s.failoverEpoch(), 0, "no failover yet: epoch 0");
  await s.heartbeat(host("h1", 10), LEASE, MARGIN);
  const db = { resources: ["db"] };
  await s.addPend(pend("ended", db));
  await s.heartbeat(host("h1", 10), LEASE, MARGIN);
  const [ended] = await s.claim([assign(pend("ended", db), "h1")]);
  await s.addPend(pend("lost-claim", db));
  await until(async () => Number(await s.redis.call("WAIT", 1, 500)) >= 1, 10_000, "the replica to have the first claim");

  // From here the primary acknowledges what the replica never receives.
  await s.redis.call("CONFIG", "SET", "requirepass", "the-replica-does-not-know-it");
  await s.redis.call("CLIENT", "KILL", "TYPE", "replica");
  t.ok(await s.release("ended", ended?.token ?? 0), "a run's end, committed on the primary");
  await s.addPend(pend("lost-pend"));
  await s.heartbeat(host("h1", 10), LEASE, MARGIN);
  const [lost] = await s.claim([assign(pend("lost-claim", db), "h1")]);
  t.ok(lost !== undefined, "a claim of the db lock, acknowledged");
  t.equal(Number(await s.redis.call("WAIT", 1, 300)), 0, "WAIT: no replica has these writes");
  await primary.kill();

  await until(async () => {
    const addr = await admin.call("SENTINEL", "get-master-addr-by-name", "floe-primary");
    return Array.isArray(addr) && addr[1] === String(replica.port);
  }, 30_000, "the sentinel to promote the replica");
  await until(async () => (await s.failoverEpoch().catch(() => 0)) > 0, 20_000, "the state to reach the new primary at a new epoch");
  const epoch = await s.failoverEpoch();
  t.ok(epoch >= 1, `the new primary's failover epoch: ${epoch}`);

  // What was lost, as the new primary tells it.
  t.same(await s.phases(["lost-pend", "lost-claim", "ended"]), [undefined, "pending", "active"], "the pend is unknown, the claimed run pending again, the ended run still active");
  t.equal(await s.isCurrent("lost-claim", lost?.token ?? 0), false, "the lost claim's token is not current");

  // The host registers again (hub/failover.ts does this before its first renewal at the new epoch).
  const held = [{ run: "lost-claim", token: lost?.token ?? 0, flowKey: "f/1", resources: ["db"], record: pend("lost-claim").record }];
  const r = await s.resync("h1", held);
  t.same(r.unnamed, [{ run: "ended", token: ended?.token ?? 0 }], "the run whose end was lost is named back to its host");
  t.same([r.blocked, r.lost], [["lost-claim"], []], "the lost claim waits while the lost end still holds its lock (its host may register a moment later)");
  t.ok(await s.release("ended", ended?.token ?? 0), "the lost end is committed again (the host has the run archived)");
  const again = await s.resync("h1", held);
  t.same([again.restored, again.lost, again.blocked, again.unnamed], [["lost-claim"], [], [], []], "registered again: the lost claim is taken back");
  t.ok(await s.isCurrent("lost-claim", lost?.token ?? 0), "with the same token");
  t.same(await s.phases(["lost-claim"]), ["active"], "off the pending list");
  t.ok(await s.addPend(pend("lost-pend"), "recover"), "the lost pend goes back on the list from its host's copy");

  // Nothing is claimed until hosts have had a lease and its margin to register again.
  await s.heartbeat(host("h1", 10), LEASE, MARGIN);
  await s.addPend(pend("other", db));
  t.same(await s.claim([assign(pend("other", db), "h1")]), [], "no claim while settling");
  await new Promise((res) => setTimeout(res, LEASE + MARGIN + 50));
  t.same(await s.claim([assign(pend("other", db), "h1")]), [], "the db lock is still the restored run's: no second holder");
  t.ok(await s.release("lost-claim", lost?.token ?? 0), "its end, with its token");
  await s.heartbeat(host("h1", 10), LEASE, MARGIN);
  const [other] = await s.claim([assign(pend("other", db), "h1")]);
  const [next] = await s.claim([assign(pend("lost-pend"), "h1")]);
  const oldTokens = [ended?.token ?? 0, lost?.token ?? 0];
  t.ok(other !== undefined && next !== undefined, "the next runs are claimed");
  t.ok(Math.min(other?.token ?? 0, next?.token ?? 0) > Math.max(...oldTokens), `new tokens (${other?.token}, ${next?.token}) are above the old primary's (${oldTokens.join(", ")}), though the replica never saw the last of them`);
  t.ok((other?.token ?? 0) >= epoch * SPLIT, "they carry the epoch");
});
