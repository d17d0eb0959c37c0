/**
 * The cluster state: one contract suite run against the in-process LocalClusterState and
 * the Redis one (test/helpers/state-contract.ts), then what only Redis has: many hosts'
 * connections racing for the same pends, resources and slots; two reapers at once; leases
 * on server time; a kill -9 of redis-server; startup refusals; hostile ids; bounded growth;
 * a claim whose reply is lost; login sessions. Every Redis here is a real redis-server.
 */
import { fullSnapshot } from "../helpers/state-contract.js";
import { createHash } from "node:crypto";
import t, { type Test } from "tap";
import { Redis } from "ioredis";
import { RedisSessionStore } from "../../hub/api/redis-sessions.js";
import type { PendRecord } from "../../store/cluster-state.js";
import { LocalClusterState } from "../../store/local-state.js";
import { openRedis, type RedisConnectOptions } from "../../store/redis-connect.js";
import { keyPart, redisKeys } from "../../store/redis-keys.js";
import { RedisUnavailableError, type RedisClusterState } from "../../store/redis-state.js";
import { until } from "../helpers/hub.js";
import { mulberry32Floats } from "../helpers/mulberry32.js";
import { freePort, startRedis, type Broker } from "../helpers/servers.js";
import { assign, contractSuite, host, pend } from "../helpers/state-contract.js";

const LONG = 60_000;

let broker: Broker;
t.before(async () => {
  broker = await startRedis(t.testdir({}));
});
t.teardown(() => broker.stop());

let clusters = 0;
const nextCluster = () => `t${process.pid}-${++clusters}`;

async function open(t: Test, o: RedisConnectOptions = {}, url = broker.url): Promise<RedisClusterState> {
  const s = await openRedis(url, { cluster: nextCluster(), ...o });
  t.teardown(() => s.close());
  return s;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Error) return e;
    throw new Error(`rejected with a non-Error: ${String(e)}`);
  }
  throw new Error("expected a rejection");
}


// --- the contract, twice ----------------------------------------------------------------

t.test("contract: LocalClusterState", async (t) => contractSuite(t, async () => new LocalClusterState()));
t.test("contract: RedisClusterState", async (t) => contractSuite(t, (t) => open(t)));

t.test("followValue on Redis: the value as of the last heartbeat, none before one, only the followed key", async (t) => {
  const s = await open(t);
  await s.setValue("mark", "v1");
  s.followValue("mark");
  t.equal(s.valueAtHeartbeat("mark"), undefined, "no heartbeat has read it yet");
  await s.heartbeat(host("h1"), LONG);
  t.same(s.valueAtHeartbeat("mark"), { value: "v1" });
  await s.setValue("mark", "v2");
  t.same(s.valueAtHeartbeat("mark"), { value: "v1" }, "until the next heartbeat, the value it read");
  t.equal(s.valueAtHeartbeat("other"), undefined, "a key not followed");
  s.followValue("other");
  t.equal(s.valueAtHeartbeat("mark"), undefined, "following another key forgets the first");
});

// --- races --------------------------------------------------------------------------------

t.test("races: four connections claiming overlapping pends never double-take a pend, a resource or a slot", async (t) => {
  const cluster = nextCluster();
  const conns = await Promise.all([0, 1, 2, 3].map(() => open(t, { cluster })));
  const s0 = conns[0] as RedisClusterState;
  const SLOTS = 2;
  const hosts = ["h0", "h1", "h2", "h3"];
  for (const h of hosts) await s0.heartbeat(host(h, SLOTS), LONG);
  const r = mulberry32Floats(7);
  const limits = new Map([["f0/1", 1], ["f1/1", 2]]);
  const pends: PendRecord[] = [];
  for (let i = 0; i < 150; i++) {
    const flowKey = `f${Math.floor(r() * 4)}/1`;
    const resources = [...new Set(Array.from({ length: Math.floor(r() * 3) }, () => `r${Math.floor(r() * 6)}`))];
    const limit = limits.get(flowKey);
    pends.push(pend(`run${String(i).padStart(3, "0")}`, { flowKey, resources, ...(limit !== undefined ? { concurrency: limit } : {}) }));
  }
  for (const p of pends) await s0.addPend(p);
  const byRun = new Map(pends.map((p) => [p.run, p]));
  const claims = new Map<string, number>();
  const active = new Map<string, { host: string; token: number; p: PendRecord }>();
  let contested = 0;
  let refused = 0;
  let violations = 0;
  for (let round = 0; round < 1000 && claims.size < pends.length; round++) {
    // Ends, all at once from random connections.
    const ending = [...active].filter(() => r() < 0.5);
    const released = await Promise.all(ending.map(([run, a]) => (conns[Math.floor(r() * conns.length)] as RedisClusterState).release(run, a.token)));
    if (released.some((x) => !x)) violations++;
    for (const [run] of ending) active.delete(run);
    // Every connection decides on its own snapshot and claims at the same time.
    const asked = await Promise.all(
      conns.map(async (c) => {
        const snap = await fullSnapshot(c);
        return snap.pends.slice(0, 12).filter(() => r() < 0.7).map((p) => assign(byRun.get(p.run) as PendRecord, hosts[Math.floor(r() * hosts.length)] as string));
      }),
    );
    const seen = new Map<string, number>();
    for (const list of asked) for (const a of list) seen.set(a.run, (seen.get(a.run) ?? 0) + 1);
    contested += [...seen.values()].filter((n) => n > 1).length;
    const got = await Promise.all(conns.map((c, i) => c.claim(asked[i] ?? [])));
    for (const [i, list] of got.entries()) {
      refused += (asked[i]?.length ?? 0) - list.length;
      for (const c of list) {
        claims.set(c.run, (claims.get(c.run) ?? 0) + 1);
        const a = asked[i]?.find((x) => x.run === c.run);
        active.set(c.run, { host: a?.host ?? "?", token: c.token, p: byRun.get(c.run) as PendRecord });
      }
    }
    // What the claims handed out, checked against the rules (not against Redis's own view).
    const holders = new Map<string, number>();
    const perHost = new Map<string, number>();
    const perFlow = new Map<string, number>();
    for (const a of active.values()) {
      for (const res of a.p.resources) holders.set(res, (holders.get(res) ?? 0) + 1);
      perHost.set(a.host, (perHost.get(a.host) ?? 0) + 1);
      perFlow.set(a.p.flowKey, (perFlow.get(a.p.flowKey) ?? 0) + 1);
    }
    if ([...holders.values()].some((n) => n > 1)) violations++;
    if ([...perHost.values()].some((n) => n > SLOTS)) violations++;
    if ([...perFlow].some(([f, n]) => n > (limits.get(f) ?? Infinity))) violations++;
  }
  t.equal(claims.size, pends.length, "every pend was taken in the end");
  t.ok([...claims.values()].every((n) => n === 1), "each pend was taken exactly once");
  t.equal(violations, 0, "no resource held twice, no host over its slots, no flow over its limit, every release accepted");
  t.ok(contested > 50 && refused > 100, `the connections did compete (${contested} pends asked for by several at once, ${refused} refusals)`);
  const tokens = [...active.values()].map((a) => a.token);
  t.equal(new Set(tokens).size, tokens.length);
  const snap = await fullSnapshot(s0);
  t.same(snap.pends, [], "nothing left pending");
  t.same(Object.fromEntries(snap.runningByHost), Object.fromEntries([...hostsOf(active)].sort()), "Redis counts what the claims handed out");
});

function hostsOf(active: Map<string, { host: string }>): Map<string, number> {
  const m = new Map<string, number>();
  for (const a of active.values()) m.set(a.host, (m.get(a.host) ?? 0) + 1);
  return m;
}

t.test("races: three reapers at once get each dead run exactly once", async (t) => {
  const cluster = nextCluster();
  const conns = await Promise.all([0, 1, 2].map(() => open(t, { cluster })));
  const s0 = conns[0] as RedisClusterState;
  for (let trial = 0; trial < 5; trial++) {
    const doomed = `doomed${trial}`;
    await s0.heartbeat(host(doomed, 100), LONG);
    const runs = Array.from({ length: 40 }, (_, i) => pend(`t${trial}-${i}`, { resources: [`res-${trial}-${i}`] }));
    for (const p of runs) await s0.addPend(p);
    t.equal((await s0.claim(runs.map((p) => assign(p, doomed)))).length, runs.length);
    await s0.heartbeat(host(doomed, 100), 100);
    await until(async () => (await s0.hosts()).some((h) => h.host.name === doomed && !h.up), 5000, "the lease to lapse");
    const got = await Promise.all(conns.map((c) => c.reapDead()));
    const all = got.flat().map((e) => e.run);
    t.equal(all.length, runs.length, `trial ${trial}: as many reaped as were lost (${got.map((g) => g.length).join("+")})`);
    t.same([...new Set(all)].sort(), runs.map((p) => p.run).sort(), "each of them, none twice");
  }
  t.same([...(await fullSnapshot(s0)).held], [], "every resource freed");
});

// --- server time -----------------------------------------------------------------------

t.test("leases run on Redis server time, whatever the hosts' clocks say", async (t) => {
  const s = await open(t);
  const realNow = Date.now;
  t.teardown(() => {
    Date.now = realNow;
  });
  // This host's clock is an hour behind: its lease must still end a minute from now.
  Date.now = () => realNow() - 3600_000;
  t.equal(await s.heartbeat(host("slow", 1), LONG), "new");
  Date.now = realNow;
  const [sec, usec] = await s.redis.time();
  const serverNow = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const lease = Number(await s.redis.hget(s.keys.table("leases"), "slow"));
  t.ok(Math.abs(lease - (serverNow + LONG)) < 2000, `the lease ends at server time + lease (off by ${lease - serverNow - LONG} ms)`);
  // A host whose clock is an hour ahead sees it up, and can claim for it.
  Date.now = () => realNow() + 3600_000;
  t.equal((await s.hosts()).find((h) => h.host.name === "slow")?.up, true);
  t.same((await fullSnapshot(s)).hosts.map((h) => h.name), ["slow"]);
  await s.addPend(pend("p1"));
  t.equal((await s.claim([assign(pend("p1"), "slow")])).length, 1, "a claim checks the lease on server time too");
  t.same(await s.reapDead(), [], "and the reaper");
  Date.now = realNow;
  // A short lease lapses by server time.
  await s.heartbeat(host("slow", 1), 200);
  await until(async () => (await s.hosts())[0]?.up === false, 5000, "a 200 ms lease to lapse");
  t.same((await s.reapDead()).map((e) => e.run), ["p1"]);
});

// --- a Redis restart ----------------------------------------------------------------------

t.test("kill -9 of redis-server: calls fail fast during the outage; state and client survive the restart", async (t) => {
  const r = await startRedis(t.testdir({}));
  t.teardown(() => r.stop());
  const s = await open(t, { commandTimeoutMs: 1000 }, r.url);
  await s.heartbeat(host("a", 3), LONG);
  for (const p of [pend("p1", { resources: ["db"], record: "record of p1" }), pend("p2", { resources: ["db"] }), pend("p3")]) await s.addPend(p);
  const [c1] = await s.claim([assign(pend("p1", { resources: ["db"] }), "a")]);
  if (c1 === undefined) throw new Error("no claim");
  await s.setValue("trigger:x", "baseline");
  await s.indexRun({ run: "p1", flow: "f", state: "active", json: '{"run":"p1"}' });

  await r.kill();
  await until(() => s.redis.status !== "ready", 5000, "the client to notice");
  const calls: [string, () => Promise<unknown>][] = [
    ["snapshot", () => s.snapshot()],
    ["claim", () => s.claim([assign(pend("p3"), "a")])],
    ["heartbeat", () => s.heartbeat(host("a", 3), LONG)],
    ["release", () => s.release("p1", c1.token)],
    ["isCurrent", () => s.isCurrent("p1", c1.token)],
    ["listRuns", () => s.listRuns({ limit: 5 })],
  ];
  for (const [name, call] of calls) {
    const t0 = Date.now();
    const e = await rejection(call());
    t.ok(e instanceof RedisUnavailableError, `${name} rejects with RedisUnavailableError`);
    t.match(e.message, new RegExp(`cluster state unavailable: \\w+ failed: Redis at ${r.url} is not connected`), `${name}: ${e.message}`);
    t.ok(Date.now() - t0 < 2500, `${name} failed within ${Date.now() - t0} ms`);
  }

  await r.restart();
  await until(async () => s.snapshot().then(() => true, () => false), 20_000, "the same client to work again");
  const snap = await fullSnapshot(s);
  t.same(snap.pends.map((p) => p.run), ["p2", "p3"], "the pending list survived, in order");
  t.same([...snap.held], [["db", "p1"]], "and the held resource");
  t.same(snap.hosts.map((h) => h.name), ["a"], "and the lease");
  t.equal(await s.isCurrent("p1", c1.token), true, "and the active run's token");
  t.equal(await s.getRecord("p1"), "record of p1");
  t.equal(await s.getValue("trigger:x"), "baseline");
  t.same(await s.listRuns({ limit: 5 }), ['{"run":"p1"}']);
  const [c3] = await s.claim([assign(pend("p3"), "a")]);
  t.ok(c3 !== undefined && c3.token > c1.token, "tokens keep growing after the restart (the scripts were loaded again)");
  t.equal(await s.release("p1", c1.token), true);
  t.equal((await s.claim([assign(pend("p2", { resources: ["db"] }), "a")])).length, 1, "db free again");
});

// --- startup refusals -----------------------------------------------------------------

t.test("a host refuses to start on an unreachable Redis, saying so", async (t) => {
  const port = await freePort();
  const t0 = Date.now();
  const e = await rejection(openRedis(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 2000 }));
  t.match(e.message, `can not reach Redis at redis://127.0.0.1:${port}: ECONNREFUSED`);
  t.ok(Date.now() - t0 < 5000, `within ${Date.now() - t0} ms`);
  const e2 = await rejection(openRedis(`redis://floe:s3cret@127.0.0.1:${port}`, { connectTimeoutMs: 2000 }));
  t.notMatch(e2.message, /s3cret/, "the password is not shown");
  t.match(e2.message, "redis://***@127.0.0.1");
});

t.test("a host refuses to start on a Redis that evicts keys, with the fix; also when CONFIG is disabled", async (t) => {
  const expect = (r: Broker, policy: string) =>
    `Redis at ${r.url} evicts keys (maxmemory-policy ${policy}); floe keeps runs and locks there and needs noeviction: CONFIG SET maxmemory-policy noeviction`;
  const lru = await startRedis(t.testdir({}), ["--maxmemory-policy", "allkeys-lru"]);
  try {
    t.equal((await rejection(openRedis(lru.url))).message, expect(lru, "allkeys-lru"));
  } finally {
    await lru.stop();
  }
  const hidden = await startRedis(t.testdir({}), ["--maxmemory-policy", "volatile-ttl", "--rename-command", "CONFIG", "floe-hidden-config"]);
  try {
    const raw = new Redis(hidden.url, { lazyConnect: true });
    await raw.connect();
    t.match((await rejection(raw.config("GET", "maxmemory-policy"))).message, /unknown command/i, "CONFIG is off on this server");
    raw.disconnect();
    t.equal((await rejection(openRedis(hidden.url))).message, expect(hidden, "volatile-ttl"), "INFO memory says it instead");
  } finally {
    await hidden.stop();
  }
});

// --- hostile ids ----------------------------------------------------------------------

const HOSTILE = ["a:b", "a", "b", "a:b:c", "*", "?", "[ab]", "../x", "..", "/", "", " ", "\0", "a\0b", "%3A", "a%3Ab", "~", "ü", "😀", "\r\n", "x".repeat(10_000), `${"x".repeat(10_000)}:y`];

t.test("key parts: safe characters only, injective, bounded", async (t) => {
  const parts = HOSTILE.map(keyPart);
  for (const [i, p] of parts.entries()) {
    t.match(p, /^[A-Za-z0-9_%~-]+$/, `part of ${JSON.stringify(HOSTILE[i]?.slice(0, 12))}`);
    t.ok(p.length <= 200, `length ${p.length}`);
  }
  t.equal(new Set(parts).size, parts.length, "every id has its own part");
  t.equal(keyPart("run-01H_x"), "run-01H_x", "plain ids are kept as they are");
  const k = redisKeys("a:b");
  t.equal(k.prefix, "floe:{a%3Ab}:");
  t.equal(redisKeys().prefix, "floe:{floe}:", "the cluster defaults to floe");
  const kinds = [k.value, k.tick, k.nodes, k.indexByFlow, (id: string) => k.indexByFlowState(id, "active"), k.session, k.reply];
  const built = HOSTILE.flatMap((id) => kinds.map((f) => f(id)));
  t.equal(new Set(built).size, built.length, "no two ids or kinds share a key");
  t.ok(built.every((key) => key.startsWith(k.prefix)), "every key stays under the prefix");
  for (const f of kinds) t.equal(new Set(HOSTILE.map((id) => f(id).split(":").length)).size, 1, "whatever the id, a kind of key has a fixed number of segments");
  t.not(redisKeys("a").value("b:value:c"), redisKeys("a:b").value("c"), "clusters can not reach into each other");
});

t.test("every key of a cluster has the cluster's hash tag: one Redis Cluster slot", async (t) => {
  // Redis Cluster hashes only what is between the first "{" and the first "}" after it.
  const tag = (key: string): string => {
    const open = key.indexOf("{");
    const close = key.indexOf("}", open + 1);
    return open < 0 || close < 0 || close === open + 1 ? key : key.slice(open + 1, close);
  };
  for (const cluster of ["floe", "a:b", "x}y{z", "", ...HOSTILE.slice(0, 20)]) {
    const k = redisKeys(cluster);
    const kinds = [k.value, k.tick, k.nodes, k.indexByFlow, (id: string) => k.indexByFlowState(id, "archived"), k.session, k.reply, k.wake];
    const keys = [...k.tables, k.indexJson, k.indexState, k.indexFlow, k.indexAll, k.indexByState("pending"), k.indexTrash, ...HOSTILE.flatMap((id) => kinds.map((f) => f(id)))];
    const tags = new Set(keys.map(tag));
    t.equal(tags.size, 1, `cluster ${JSON.stringify(cluster.slice(0, 12))}: one tag for ${keys.length} keys`);
    t.not([...tags][0], "", "never the empty tag (which hashes whole keys)");
  }
  t.not(tag(redisKeys("a").prefix), tag(redisKeys("b").prefix), "clusters spread over slots");
});

t.test("hostile ids round-trip through Redis without colliding or escaping their keys", async (t) => {
  const s = await open(t, { cluster: "h:*" });
  const other = await open(t, { cluster: "h" });
  await s.heartbeat(host("worker", HOSTILE.length), LONG);
  for (const [i, id] of HOSTILE.entries()) {
    await s.setValue(id, `v${i}`);
    t.equal(await s.claimTick(id, LONG), true);
    await s.heartbeat(host(id, 1), LONG);
    await s.addPend(pend(id, { flowKey: id, resources: [id], hostTags: [id], adoptedBy: id, record: `rec${i}` }));
    await s.indexRun({ run: id, flow: id, state: "active", json: JSON.stringify({ i }) });
    await s.indexNode(id, id, `n${i}`);
  }
  for (const [i, id] of HOSTILE.entries()) {
    t.equal(await s.getValue(id), `v${i}`, `value ${i}`);
    t.equal(await s.getRecord(id), `rec${i}`, `record ${i}`);
    t.equal(await s.claimTick(id, LONG), false, `tick ${i}`);
    t.same(await s.listRuns({ limit: 5, flow: id }), [JSON.stringify({ i })], `index of flow ${i}`);
    t.same(await s.getRun(id), { json: JSON.stringify({ i }), nodes: { [id]: `n${i}` } }, `run ${i}`);
  }
  const snap = await fullSnapshot(s);
  t.same(snap.pends.map((p) => p.run), HOSTILE, "every pend, in order, with its exact id");
  t.same(snap.pends.map((p) => [p.flowKey, p.resources, p.hostTags, p.adoptedBy]), HOSTILE.map((id) => [id, [id], [id], id]));
  t.same(snap.hosts.map((h) => h.name).sort(), [...HOSTILE, "worker"].sort());
  const got = await s.claim(HOSTILE.map((id) => ({ run: id, host: "worker", flowKey: id, resources: [id] })));
  t.same(got.map((c) => c.run), HOSTILE, "each claimed under its own resource");
  t.same([...(await fullSnapshot(s)).held].sort(), HOSTILE.map((id) => [id, id]).sort());
  t.equal((await s.reapDead()).length, 0);
  for (const c of got) t.equal(await s.release(c.run, c.token), true);
  // Nothing leaked into the other cluster, whose name is a prefix of this one's.
  t.equal(await other.getValue("*"), undefined);
  t.same((await fullSnapshot(other)).hosts, []);
  t.same(await other.listRuns({ limit: 5 }), []);
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await s.redis.scan(cursor, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  const ours = keys.filter((k) => k.startsWith(s.keys.prefix));
  t.ok(ours.length >= HOSTILE.length * 3, `${ours.length} keys under ${s.keys.prefix}`);
  t.ok(keys.every((k) => /^floe:\{[A-Za-z0-9_%~-]+\}(:[A-Za-z0-9_%~-]+)+$/.test(k) && k.length < 300), "every key in Redis is made of safe parts");
});

// --- bounds -----------------------------------------------------------------------------

t.test("Redis stays bounded: ended phases and records are forgotten, the archive index is capped", async (t) => {
  const s = await open(t, { state: { phaseTtlMs: 300, doneRecordTtlMs: 100, archivedPerFlow: 3 } });
  await s.heartbeat(host("a", 5), LONG);
  await s.addPend(pend("done", { record: "r" }));
  const [c] = await s.claim([assign(pend("done"), "a")]);
  await s.release("done", c?.token ?? -1);
  t.equal(await s.addPend(pend("done"), "recover"), false, "just after it ended, the cluster still knows");
  t.equal(await s.getRecord("done"), "r");
  // Pruning happens on later changes: any release, removal, claim or reap.
  await until(async () => {
    await s.reapDead();
    return (await s.getRecord("done")) === undefined;
  }, 5000, "the done run's record to be dropped");
  await until(async () => {
    await s.reapDead();
    return (await s.redis.hexists(s.keys.table("phase"), "done")) === 0;
  }, 5000, "the done run's phase to be forgotten");
  t.equal(await s.redis.zcard(s.keys.table("phaseDrop")), 0);
  t.equal(await s.redis.zcard(s.keys.table("recordDrop")), 0);

  for (const i of [1, 2, 3, 4, 5]) {
    await s.indexRun({ run: `0${i}`, flow: "f", state: "archived", json: `a${i}` });
    await s.indexNode(`0${i}`, "n", "x");
  }
  await s.indexRun({ run: "06", flow: "f", state: "active", json: "a6" });
  await s.indexRun({ run: "07", flow: "g", state: "archived", json: "b7" });
  t.same(await s.listRuns({ limit: 10, flow: "f" }), ["a6", "a5", "a4", "a3"], "three archived per flow, the newest, and the live one");
  t.same(await s.listRuns({ limit: 10 }), ["b7", "a6", "a5", "a4", "a3"]);
  t.equal(await s.getRun("01"), undefined);
  t.equal(await s.redis.exists(s.keys.nodes("01"), s.keys.nodes("02")), 0, "the trimmed runs' node hashes are gone");
  t.equal(await s.redis.exists(s.keys.nodes("05")), 1);
  t.equal(await s.redis.scard(s.keys.indexTrash), 0);
  const replies = await s.redis.keys(`${s.keys.prefix}reply:*`);
  t.ok(replies.length > 0, "claims and reaps keep their answers for a retry...");
  for (const k of replies) {
    const ttl = await s.redis.pttl(k);
    t.ok(ttl > 0 && ttl <= 120_000, `...for a while only (${ttl} ms)`);
  }
});

// --- lost replies ---------------------------------------------------------------------

t.test("a claim whose reply is lost to a timeout is sent again and answers what it took", async (t) => {
  const s = await open(t, { commandTimeoutMs: 300, state: { replayWindowMs: 15_000 } });
  await s.heartbeat(host("a", 5), LONG);
  await s.addPend(pend("p1"));
  await s.addPend(pend("p2"));
  const admin = new Redis(broker.url);
  t.teardown(async () => {
    await admin.client("UNPAUSE").catch(() => undefined);
    admin.disconnect();
  });
  // Writes stall for 1.5 s: the first attempt times out on the client but runs afterwards.
  await admin.client("PAUSE", 1500, "WRITE");
  const t0 = Date.now();
  const got = await s.claim([assign(pend("p1"), "a"), assign(pend("p2"), "a")]);
  t.ok(Date.now() - t0 >= 1000, `the claim waited out the stall (${Date.now() - t0} ms)`);
  t.same(got.map((c) => c.run), ["p1", "p2"], "the answer of the claim that was applied");
  for (const c of got) t.equal(await s.isCurrent(c.run, c.token), true, "with the tokens Redis has");
  t.equal(await s.redis.get(s.keys.table("tokenSeq")), String(Math.max(...got.map((c) => c.token))), "applied once: no tokens were drawn by the retries");
  // A Redis that is up but does not answer: a plain call fails after the command timeout.
  await admin.client("PAUSE", 2000, "WRITE");
  const t1 = Date.now();
  const e = await rejection(s.setValue("k", "v"));
  t.ok(e instanceof RedisUnavailableError, e.message);
  t.match(e.message, /setValue failed: Redis at .* did not answer in time/);
  t.ok(Date.now() - t1 < 1500, `it failed after ${Date.now() - t1} ms, during the stall`);
  await admin.client("UNPAUSE");
});

// --- sessions -------------------------------------------------------------------------

t.test("RedisSessionStore: create, get on any host, expiry, delete; only a hash is stored", async (t) => {
  const s = await open(t);
  const s2 = await open(t, { cluster: s.keys.cluster });
  const store = new RedisSessionStore(s.redis, s.keys, LONG);
  const { token, session } = await store.create("ann", "operator");
  t.match(session, { user: "ann", role: "operator" });
  t.same(await store.get(token), session);
  t.same(await new RedisSessionStore(s2.redis, s2.keys).get(token), session, "another host's connection sees it");
  t.equal(await store.get(`${token}x`), undefined);
  t.equal(await store.get(""), undefined);
  const keys = await s.redis.keys(`${s.keys.prefix}session:*`);
  const hash = createHash("sha256").update(token).digest("hex");
  t.same(keys, [s.keys.session(hash)], "one key, named by the token's SHA-256");
  t.notMatch((await s.redis.get(keys[0] as string)) ?? "", token, "the token itself is nowhere");
  const ttl = await s.redis.pttl(keys[0] as string);
  t.ok(ttl > LONG - 5000 && ttl <= LONG, `Redis expires it with the session (${ttl} ms)`);
  await store.delete(token);
  t.equal(await store.get(token), undefined, "deleted");
  t.equal(await s.redis.exists(keys[0] as string), 0);
  await store.delete(token);

  const short = new RedisSessionStore(s.redis, s.keys, 200);
  const brief = await short.create("bob", "viewer");
  t.same(await short.get(brief.token), brief.session);
  await until(async () => (await short.get(brief.token)) === undefined, 5000, "the session to expire");
  const briefKey = s.keys.session(createHash("sha256").update(brief.token).digest("hex"));
  await until(async () => (await s.redis.exists(briefKey)) === 0, 5000, "Redis to drop the expired session's key");

  const later = new RedisSessionStore(s.redis, s.keys, LONG, () => Date.now() + 2 * LONG);
  const kept = await store.create("cy", "admin");
  t.equal(await later.get(kept.token), undefined, "a session past its expiry is refused even before Redis drops it");
  await s.redis.set(s.keys.session(createHash("sha256").update("forged").digest("hex")), '{"user":"x","role":"root","expires":9e15}');
  t.equal(await store.get("forged"), undefined, "a malformed session is refused");
});

t.test("a dead host with nothing to reap is forgotten after the registry's retention", async (t) => {
  const s = await open(t, { state: { forgetHostsAfterMs: 300 } });
  await s.heartbeat(host("stays", 1), 60_000);
  await s.heartbeat(host("crashed", 1), 100, 50);
  const p = pend("c1");
  await s.addPend(p);
  await s.heartbeat(host("busy", 1), 100, 50);
  t.equal((await s.claim([assign(p, "busy")])).length, 1);
  await until(async () => (await s.hosts()).filter((h) => !h.up).length === 2, 5000, "both leases to lapse");
  await until(async () => (await s.reapDead()).some((r) => r.run === "c1"), 5000, "busy's run to be reaped");
  await until(async () => {
    await s.reapDead();
    return (await s.hosts()).length === 1;
  }, 5000, "the dead hosts to be forgotten");
  t.same((await s.hosts()).map((h) => h.host.name), ["stays"], "only the live host is left");
});
