/**
 * The run index mirror (hub/index-mirror.ts) on a real redis-server: a host's writes go out
 * in batches, one script each; a write superseded before it is sent is never sent; a run's
 * end closes its batch; a batch that fails while Redis is away is sent again, in order,
 * once it is back; and the index ends up as it would with each write sent at once.
 */
import t, { type Test } from "tap";
import { pino } from "pino";
import { IndexMirror, type IndexMirrorOptions } from "../../hub/index-mirror.js";
import type { HostName, NodeState, RunEvent, RunId, RunRef, RunState } from "../../hub/types.js";
import type { ClusterState, IndexWrite } from "../../store/cluster-state.js";
import { LocalClusterState } from "../../store/local-state.js";
import { openRedis } from "../../store/redis-connect.js";
import type { RedisClusterState } from "../../store/redis-state.js";
import { until } from "../helpers/hub.js";
import { startRedis, type Broker } from "../helpers/servers.js";

let broker: Broker;
t.before(async () => {
  broker = await startRedis(t.testdir({}));
});
t.teardown(() => broker.stop());

let clusters = 0;
const nextCluster = (): string => `m${process.pid}-${++clusters}`;
const HOUR = 3600_000;

function ref(run: string, flow = "f"): RunRef {
  return { flow, ver: 1, run: run as RunId, adoptedBy: "h1" as HostName };
}

function runEv(run: string, state: RunState, flow = "f"): RunEvent {
  return { v: 1, type: "run", summary: { ref: ref(run, flow), state, attempt: 1, trigger: { id: "go", type: "data", values: {} }, adoptedAt: 1 } };
}

function nodeEv(run: string, node: string, state: NodeState): RunEvent {
  return { v: 1, type: "node", ref: ref(run), node: { id: node, name: node, class: "task", type: "exec", state, attempts: 1, runAttempt: 1, logLines: 0 } };
}

/** A mirror on a real Redis state whose batches are recorded as they are sent. */
async function mirrorOn(t: Test, url: string, o: IndexMirrorOptions = {}, cluster = nextCluster()): Promise<{ s: RedisClusterState; m: IndexMirror; batches: IndexWrite[][]; warned: string[] }> {
  const s = await openRedis(url, { cluster, commandTimeoutMs: 1000 });
  t.teardown(() => s.close());
  const batches: IndexWrite[][] = [];
  const spy = Object.assign(Object.create(s) as RedisClusterState, {
    indexBatch: (w: readonly IndexWrite[]) => {
      batches.push([...w]);
      return s.indexBatch(w);
    },
  });
  const warned: string[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void warned.push(line) });
  return { s, m: new IndexMirror(spy, log, o), batches, warned };
}

const states = (b: readonly IndexWrite[]): string[] => b.map((w) => (w.kind === "run" ? `${w.run}:${w.state}` : `${w.run}/${w.node}:${(JSON.parse(w.json) as { state: string }).state}`));

async function indexOf(s: ClusterState, runs: readonly string[]): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const r of runs) {
    const got = await s.getRun(r);
    out[r] = got === undefined ? undefined : { state: (JSON.parse(got.json) as { state: string }).state, nodes: Object.fromEntries(Object.entries(got.nodes).map(([k, v]) => [k, (JSON.parse(v) as { state: string }).state])) };
  }
  return { runs: out, all: (await s.listRuns({ limit: 100 })).length, counts: await s.countRuns("f") };
}

t.test("a run's writes go out as one script; superseded writes are not sent; the index is as with each sent at once", async (t) => {
  const { s, m, batches } = await mirrorOn(t, broker.url, { windowMs: HOUR });
  const evs = [runEv("r1", "pending"), runEv("r2", "pending"), runEv("r1", "active"), nodeEv("r1", "a", "running"), nodeEv("r1", "b", "waiting"), nodeEv("r1", "a", "good"), runEv("r2", "active")];
  for (const ev of evs) m.write(ev);
  t.equal(m.unsent, 4, "one write per entry waits: each entry's newest");
  t.same(batches, [], "nothing sent within the window");
  await m.settle();
  t.equal(batches.length, 1, "one script");
  t.same(states(batches[0] ?? []), ["r1:active", "r1/b:waiting", "r1/a:good", "r2:active"], "each entry's newest write, in the place of its last");
  t.equal(m.unsent, 0);

  // The same writes applied one at a time, by the in-process state.
  const ref = new LocalClusterState();
  for (const ev of evs) {
    if (ev.type === "run") await ref.indexRun({ run: ev.summary.ref.run, flow: ev.summary.ref.flow, state: ev.summary.state, json: JSON.stringify(ev.summary) });
    else if (ev.type === "node") await ref.indexNode(ev.ref.run, ev.node.id, JSON.stringify(ev.node));
  }
  t.same(await indexOf(s, ["r1", "r2"]), await indexOf(ref, ["r1", "r2"]), "the index holds what writes sent one by one make");
  t.same(await indexOf(s, ["r1", "r2"]), { runs: { r1: { state: "active", nodes: { a: "good", b: "waiting" } }, r2: { state: "active", nodes: {} } }, all: 2, counts: { pending: 0, active: 2, archived: 0 } });
  t.same(await s.listRuns({ limit: 10 }), await ref.listRuns({ limit: 10 }), "listed alike");
});

t.test("a run's end sends its batch at the end of the turn; other writes wait for the window", async (t) => {
  const { s, m, batches } = await mirrorOn(t, broker.url, { windowMs: 100 });
  m.write(runEv("r1", "active"));
  m.write(nodeEv("r1", "a", "good"));
  m.write(runEv("r1", "archived"));
  await until(() => m.unsent === 0 && batches.length === 1, 5000, "the batch to be sent");
  t.same(states(batches[0] ?? []), ["r1/a:good", "r1:archived"], "active superseded by the end");
  await until(async () => (await s.getRun("r1")) !== undefined, 5000, "the write to land");
  m.write(runEv("r2", "pending"));
  t.equal(m.unsent, 1);
  await until(async () => (await s.getRun("r2")) !== undefined, 5000, "the window to close by itself");
  t.equal(batches.length, 2);
  t.same(await s.countRuns("f"), { pending: 1, active: 0, archived: 1 });
});

t.test("an ended run stays ended: a later write of an earlier state waiting with it does not replace it", async (t) => {
  const { s, m, batches } = await mirrorOn(t, broker.url, { windowMs: HOUR });
  m.write(runEv("r1", "archived"));
  m.write(runEv("r1", "active"));
  await m.settle();
  t.same(states(batches.flat()), ["r1:archived"]);
  t.same(await s.countRuns("f"), { pending: 0, active: 0, archived: 1 });
});

t.test("big backlogs go out in batches of maxBatch, in order", async (t) => {
  const { s, m, batches } = await mirrorOn(t, broker.url, { windowMs: HOUR, maxBatch: 2 });
  for (const r of ["r1", "r2", "r3", "r4", "r5"]) m.write(runEv(r, "pending"));
  await m.drain();
  t.same(batches.map(states), [["r1:pending", "r2:pending"], ["r3:pending", "r4:pending"], ["r5:pending"]]);
  t.equal((await s.listRuns({ limit: 10 })).length, 5);
});

t.test("a write the index refuses is skipped and logged; the rest of its batch applies", async (t) => {
  const { s, m, warned } = await mirrorOn(t, broker.url, { windowMs: HOUR });
  m.write(runEv("r1", "pending", "f"));
  await m.settle();
  m.write(runEv("r1", "active", "other"));
  m.write(runEv("r2", "pending", "f"));
  await m.drain();
  t.same(await s.countRuns("f"), { pending: 2, active: 0, archived: 0 }, "r1 kept under its flow, r2 written");
  t.match(warned.join(""), /refused a write of this run/);
  t.match(warned.join(""), /indexed under flow f/);
});

t.test("writes made while Redis is away are sent again when it is back: each entry's newest, in order", async (t) => {
  const r = await startRedis(t.testdir({}));
  t.teardown(() => r.stop());
  const { s, m, batches, warned } = await mirrorOn(t, r.url, { windowMs: HOUR });
  m.write(runEv("r1", "pending"));
  await m.flush();
  t.equal(m.unsent, 1, "a flush with nothing failed sends nothing: writes go with their batch");
  await m.settle();
  t.same(await s.countRuns("f"), { pending: 1, active: 0, archived: 0 });

  await r.kill();
  await until(() => s.redis.status !== "ready", 5000, "the client to notice");
  m.write(runEv("r1", "active"));
  m.write(nodeEv("r1", "a", "running"));
  m.write(runEv("r2", "pending"));
  await t.rejects(m.drain(), /cluster state unavailable/, "sending while Redis is away fails");
  t.equal(m.unsent, 3, "and keeps its writes");
  t.equal(warned.filter((l) => l.includes("could not update the run index")).length, 1, "warned once");
  // Newer writes while it is away: r1's node status supersedes the failed one; r3 comes after.
  m.write(nodeEv("r1", "a", "good"));
  m.write(runEv("r3", "pending"));
  m.write(runEv("r1", "archived"));
  await t.rejects(m.flush(), /cluster state unavailable/, "a flush (cluster sync) while Redis is away fails");
  await t.rejects(m.drain(), /cluster state unavailable/, "a stop while Redis is away fails too, keeping them");
  t.equal(m.unsent, 4);
  t.equal(warned.filter((l) => l.includes("could not update the run index")).length, 1, "still warned once");

  await r.restart();
  await until(async () => m.flush().then(() => true, () => false), 20_000, "a flush to go through");
  t.equal(m.unsent, 0);
  t.same(states(batches.at(-1) ?? []), ["r2:pending", "r1/a:good", "r3:pending", "r1:archived"], "the failed writes before the newer ones, each entry's newest in the place of its last write");
  t.same(await indexOf(s, ["r1", "r2", "r3"]), { runs: { r1: { state: "archived", nodes: { a: "good" } }, r2: { state: "pending", nodes: {} }, r3: { state: "pending", nodes: {} } }, all: 3, counts: { pending: 2, active: 0, archived: 1 } });
  // And the mirror goes on batching as before.
  m.write(runEv("r2", "active"));
  await m.settle();
  t.same(await s.countRuns("f"), { pending: 1, active: 1, archived: 1 });
});

t.test("flush and settle cost nothing when nothing waits", async (t) => {
  const { m, batches } = await mirrorOn(t, broker.url, { windowMs: HOUR });
  await m.flush();
  await m.settle();
  await m.drain();
  t.same(batches, []);
});

t.test("a run entering the list goes out at the end of its turn, not after the window: other hosts look it up right after its 201", async (t) => {
  const { s, m, batches } = await mirrorOn(t, broker.url, { windowMs: HOUR });
  m.write(runEv("r1", "pending"));
  m.write(nodeEv("r1", "a", "waiting"));
  await until(async () => (await s.getRun("r1")) !== undefined, 10_000, "the new run in the index");
  t.same(states(batches.flat()), ["r1:pending", "r1/a:waiting"], "sent with what joined it in its turn");
  m.write(runEv("r1", "active"));
  // Turns pass (where an end or a new run would have been sent); the window is an hour.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  t.equal(batches.length, 1, "a later write waits for its window");
  t.equal(m.unsent, 1);
});

t.test("takeWhenIdle: a run's end while a batch is out waits for it (which carries what waited), then takes; take alone gives nothing then", async (t) => {
  const s = await openRedis(broker.url, { cluster: nextCluster(), commandTimeoutMs: 1000 });
  t.teardown(() => s.close());
  let open = (): void => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const batches: IndexWrite[][] = [];
  const spy = Object.assign(Object.create(s) as RedisClusterState, {
    indexBatch: async (w: readonly IndexWrite[]) => {
      batches.push([...w]);
      await gate;
      return s.indexBatch(w);
    },
  });
  const m = new IndexMirror(spy, pino({ level: "silent" }), { windowMs: HOUR });
  m.write(runEv("r0", "pending")); // goes out at the end of the turn, and waits at the gate
  await until(() => batches.length === 1, 5000, "the first batch out");
  m.write(nodeEv("r1", "a", "good"));
  t.equal(m.take("r1"), undefined, "take: nothing while a batch is out");
  const taking = m.takeWhenIdle("r1");
  setTimeout(open, 50);
  const taken = await taking;
  t.not(taken, undefined, "after it: the run's release may carry its end");
  t.same(states(batches.flat()), ["r0:pending", "r1/a:good"], "what waited went out with the batches in flight, in order");
  t.equal(m.unsent, 0);
});

t.test("take: a run's unsent writes leave the mirror in order, for its release to carry; restore puts back those a newer write did not replace", async (t) => {
  const { m, batches } = await mirrorOn(t, broker.url, { windowMs: 60_000 });
  m.write(runEv("r1", "active"));
  m.write(nodeEv("r1", "a", "running"));
  m.write(nodeEv("r2", "a", "running"));
  m.write(nodeEv("r1", "a", "good"));
  const taken = m.take("r1");
  t.same(states(taken ?? []), ["r1:active", "r1/a:good"], "r1's writes, the newest of each entry, in order");
  t.equal(m.unsent, 1, "r2's write stays");
  m.write(nodeEv("r1", "a", "bad"));
  m.restore(taken ?? []);
  await until(() => m.unsent === 0, 5000, "the restored writes to go out");
  t.same(batches.flat().map((w) => states([w])[0]).sort(), ["r1/a:bad", "r1:active", "r2/a:running"], "restored, but the newer status of r1/a wins over the one taken");
  t.same(m.take("r3"), [], "nothing unsent of a run: nothing to carry");
});
