/**
 * The Redis state's snapshot sends its host table only when the registry changed (a host
 * version), and reads liveness from the sorted lease ends; a host's periodic reap asks Redis
 * nothing while no host's runs can be reaped. Seeded: for random sequences of hosts joining,
 * renewing, changing tags or slots, lapsing, returning and being removed, the live hosts a
 * caching snapshot reports — names, tags, slots — are those the registry says are up, at
 * every step. Every Redis here is a real redis-server.
 */
import t, { type Test } from "tap";
import { Redis } from "ioredis";
import { openRedis } from "../../store/redis-connect.js";
import type { RedisClusterState } from "../../store/redis-state.js";
import { until } from "../helpers/hub.js";
import { mulberry32Floats } from "../helpers/mulberry32.js";
import { startRedis, type Broker } from "../helpers/servers.js";
import { assign, fullSnapshot, host, pend } from "../helpers/state-contract.js";

const LONG = 60_000;
const SEEDS = Number(process.env["FLOE_HOST_TABLE_SEEDS"] ?? 12);
const STEPS = 30;

let broker: Broker;
t.before(async () => {
  broker = await startRedis(t.testdir({}));
});
t.teardown(() => broker.stop());

let clusters = 0;
async function open(t: Test, cluster = `ht${process.pid}-${++clusters}`): Promise<RedisClusterState> {
  const s = await openRedis(broker.url, { cluster });
  t.teardown(() => s.close());
  return s;
}

/** Live hosts as the registry says (GET /hosts), as comparable text. */
async function registryLive(s: RedisClusterState): Promise<string> {
  const all = await s.hosts();
  return all
    .filter((h) => h.up)
    .map(({ host: h }) => `${h.name}[${[...h.tags].sort().join(",")}]x${h.slots}`)
    .sort()
    .join(" ");
}

async function snapshotLive(s: RedisClusterState): Promise<string> {
  const snap = await fullSnapshot(s);
  return snap.hosts
    .map((h) => `${h.name}[${[...h.tags].sort().join(",")}]x${h.slots}`)
    .sort()
    .join(" ");
}

t.test(`a snapshot's live hosts, from its cached host table, are the registry's at every step (${SEEDS} seeds)`, async (t) => {
  const failures: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rnd = mulberry32Floats(seed);
    const cluster = `ht${process.pid}-seed${seed}`;
    // One state caches the host table (a dispatcher's); another is every host's heartbeat.
    const reader = await open(t, cluster);
    const writer = await open(t, cluster);
    const names = ["a", "b", "c", "d", "e"];
    const known = new Map<string, { tags: string[]; slots: number }>();
    for (let step = 0; step < STEPS; step++) {
      const name = names[Math.floor(rnd() * names.length)] as string;
      const r = rnd();
      const cur = known.get(name) ?? { tags: rnd() < 0.5 ? ["linux"] : [], slots: 1 + Math.floor(rnd() * 3) };
      let what: string;
      if (r < 0.35) {
        what = `renew ${name}`;
        await writer.heartbeat(host(name, cur.slots, cur.tags), LONG);
        known.set(name, cur);
      } else if (r < 0.5) {
        const next = { tags: rnd() < 0.5 ? ["gpu", "linux"] : ["linux"], slots: cur.slots };
        what = `retag ${name} ${next.tags.join(",")}`;
        await writer.heartbeat(host(name, next.slots, next.tags), LONG);
        known.set(name, next);
      } else if (r < 0.62) {
        const next = { tags: cur.tags, slots: 1 + ((cur.slots + 1) % 4) };
        what = `slots ${name} ${next.slots}`;
        await writer.heartbeat(host(name, next.slots, next.tags), LONG);
        known.set(name, next);
      } else if (r < 0.8) {
        // A lease of 1 ms: the host lapses without any version moving; wait until it has.
        what = `lapse ${name}`;
        await writer.heartbeat(host(name, cur.slots, cur.tags), 1);
        known.set(name, cur);
        await until(async () => !(await writer.hosts()).some((h) => h.host.name === name && h.up), 5000, `${name}'s lease to lapse`);
      } else if (r < 0.9) {
        what = `remove ${name}`;
        await writer.removeHost(name);
        known.delete(name);
      } else {
        what = `look`;
      }
      const [want, got] = [await registryLive(writer), await snapshotLive(reader)];
      if (want !== got) {
        failures.push(`seed ${seed}, step ${step} (${what}): registry has "${want}", the snapshot "${got}"`);
        break;
      }
    }
  }
  t.same(failures, [], "every step of every seed alike");
});

t.test("the host table travels only when the registry changed", async (t) => {
  const s = await open(t);
  const admin = new Redis(broker.url);
  t.teardown(() => admin.disconnect());
  await s.heartbeat(host("a", 2), LONG);
  await s.heartbeat(host("b", 2), LONG);
  await fullSnapshot(s);
  const ver = await admin.get(s.keys.table("hostVer"));
  await s.heartbeat(host("a", 2), LONG);
  await s.addPend(pend("p1"));
  t.equal(await admin.get(s.keys.table("hostVer")), ver, "a plain renewal and a pend leave the host version");
  t.same((await fullSnapshot(s)).hosts.map((h) => h.name).sort(), ["a", "b"], "the cached table still answers");
  await s.heartbeat(host("b", 3), LONG);
  t.not(await admin.get(s.keys.table("hostVer")), ver, "a host whose slots changed moves it");
  const snap = await fullSnapshot(s);
  t.equal(snap.hosts.find((h) => h.name === "b")?.slots, 3, "and the next snapshot has the new table");
  t.ok([...snap.leaseEnds.values()].every((e) => e > Date.now() + LONG / 2), "live hosts come with a lease end (the earliest of them)");
  await s.removeHost("a");
  t.same((await fullSnapshot(s)).hosts.map((h) => h.name), ["b"], "a removed host leaves the table");
});

t.test("a periodic reap asks nothing until some host's runs may be reaped, then reaps them", async (t) => {
  const cluster = `ht${process.pid}-reap`;
  const dying = await open(t, cluster);
  const live = await open(t, cluster);
  const admin = new Redis(broker.url);
  t.teardown(() => admin.disconnect());
  const evalshas = async (): Promise<number> => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await admin.info("commandstats"))?.[1] ?? "0");
  await live.heartbeat(host("live", 2), LONG);
  const before = await evalshas();
  t.same(await live.reapDead({ ifDue: true }), [], "nothing due");
  t.equal(await evalshas(), before, "and no script was run for it");
  // A host with a short lease takes a run and dies (renews no more).
  await dying.heartbeat(host("dying", 2), 50, 10);
  const p = pend("r1");
  await dying.addPend(p);
  const [c] = await dying.claim([assign(p, "dying")]);
  t.ok(c !== undefined, "the dying host took the run");
  // The live host's next renewal reads the earliest reap time: its reaps ask again from then.
  await live.heartbeat(host("live", 2), LONG);
  let reaped: string[] = [];
  await until(async () => {
    reaped = (await live.reapDead({ ifDue: true })).map((e) => e.run);
    return reaped.length > 0;
  }, 5000, "the dead host's run to be reaped by a periodic reap");
  t.same(reaped, ["r1"], "its run is reaped");
});
