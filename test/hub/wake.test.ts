/**
 * Wake-ups instead of a herd (DESIGN §3, hub/dispatcher.ts): the pass of the host that made
 * a change decides for every host, takes what falls to it and wakes only the hosts the rest
 * falls to; the others do not look. In Redis a wake-up is a list of the host's own that it
 * blocks on: only the host named wakes, and wake-ups sent before it waits coalesce.
 */
import { pino } from "pino";
import t, { type Test } from "tap";
import { LocalClusterState, type ClusterState } from "../../hub/cluster-state.js";
import { Dispatcher } from "../../hub/dispatcher.js";
import { Publisher } from "../../hub/publisher.js";
import { RunTable } from "../../hub/run-table.js";
import type { RunEvent } from "../../hub/types.js";
import { LocalBus } from "../../store/bus.js";
import { openRedis } from "../../store/redis-connect.js";
import { until } from "../helpers/hub.js";
import { startRedis } from "../helpers/servers.js";

const LONG = 3_600_000;

function dispatcher(state: ClusterState, host: string, activated: string[]): Dispatcher {
  return new Dispatcher({
    state,
    table: new RunTable(),
    host,
    publisher: new Publisher(new LocalBus<RunEvent>(), undefined, undefined),
    log: pino({ level: "silent" }),
    mayClaim: () => true,
    activate: async (run) => void activated.push(`${run}@${host}`),
    wakeWaitMs: 200,
  });
}

async function cluster(t: Test, hosts: readonly { name: string; tags: string[] }[]) {
  const state = new LocalClusterState();
  const activated: string[] = [];
  const ds = new Map<string, Dispatcher>();
  for (const h of hosts) {
    await state.heartbeat({ name: h.name, tags: h.tags, slots: 2, running: 0, lastSeen: 0, startedAt: 0 }, LONG);
    ds.set(h.name, dispatcher(state, h.name, activated));
  }
  for (const d of ds.values()) d.open();
  // Their opening passes (nothing pending) are over before the test's own change.
  await until(() => [...ds.values()].every((d) => d.stats.passes >= 1), 5000, "the opening passes");
  await new Promise((r) => setTimeout(r, 50));
  t.teardown(async () => {
    for (const d of ds.values()) await d.stop();
  });
  const get = (name: string): Dispatcher => ds.get(name) as Dispatcher;
  return { state, activated, get };
}

const pend = (run: string, hostTags: string[], adoptedBy: string) => ({ run, flowKey: "f/1", hostTags, resources: [], adoptedBy, adoptedAt: 1, record: "" });

t.test("a pend only another host can run: the adopting host's pass wakes that host, and no other looks", async (t) => {
  const c = await cluster(t, [
    { name: "h1", tags: [] },
    { name: "h2", tags: [] },
    { name: "h3", tags: ["gpu"] },
  ]);
  const before = c.get("h2").stats.passes;
  await c.state.addPend(pend("r1", ["gpu"], "h1"));
  c.get("h1").kick(); // as adoption does
  await until(() => c.activated.length === 1, 5000, "the run started");
  t.same(c.activated, ["r1@h3"], "the gpu host took it");
  t.equal(c.get("h1").stats.wakesSent, 1, "the adopting host woke one host");
  t.equal(c.get("h3").stats.woken, 1, "that host was woken once");
  await new Promise((r) => setTimeout(r, 300));
  t.equal(c.get("h2").stats.passes, before, "a host with nothing to take did not look");
});

t.test("pends any host can run: each goes to one host, the same whoever decides; one wake-up each at most, no claim refused", async (t) => {
  const c = await cluster(t, [
    { name: "h1", tags: [] },
    { name: "h2", tags: [] },
    { name: "h3", tags: [] },
  ]);
  for (let i = 1; i <= 6; i++) await c.state.addPend(pend(`r${i}`, [], `h${1 + (i % 3)}`));
  // Every host passes at once, as after news they all heard: they agree on who takes what.
  for (const h of ["h1", "h2", "h3"]) c.get(h).kick();
  await until(() => c.activated.length === 6, 5000, "all six started");
  t.equal(new Set(c.activated.map((a) => a.split("@")[0])).size, 6, "each run started once");
  t.ok(new Set(c.activated.map((a) => a.split("@")[1])).size > 1, "spread over the hosts");
  const sum = (k: "conflicts" | "woken" | "claimed") => ["h1", "h2", "h3"].reduce((n, h) => n + c.get(h).stats[k], 0);
  t.equal(sum("conflicts"), 0, "no claim refused: the deciding hosts agreed");
  t.ok(sum("woken") <= sum("claimed"), `wake-ups ${sum("woken")} ≤ claims ${sum("claimed")}`);
});

t.test("Redis: only the host named wakes; wake-ups sent before it waits coalesce into one", async (t) => {
  const broker = await startRedis(t.testdir({}));
  t.teardown(() => broker.stop());
  const a = await openRedis(broker.url, { cluster: "wake" });
  const b = await openRedis(broker.url, { cluster: "wake" });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const signal = new AbortController().signal;
  // A wake-up stands only for a host with a free slot: every host here has one, h2 one only.
  for (const name of ["h0", "h1", "h2", "h3"]) await a.heartbeat({ name, tags: [], slots: name === "h2" ? 1 : 2, running: 0, lastSeen: 0, startedAt: 0 }, LONG);
  // Adopted by h0: the adoption is h0's wake-up for them, and h0's pass gives them on.
  for (const run of ["r1", "r2", "r3"]) await a.addPend(pend(run, [], "h0"));
  t.equal(await a.wake([{ run: "r1", host: "h2" }], 60_000, "h3"), 0, "within the adoption's stand, another host's pass wakes nobody for r1");
  t.equal(await a.wake([{ run: "r1", host: "h2" }], 60_000, "h0"), 1, "the adopting host's pass does: woken for r1");
  t.equal(await a.wake([{ run: "r1", host: "h2" }], 60_000, "h0"), 0, "not again for r1 while its wake-up stands");
  t.equal(await a.wake([{ run: "r2", host: "h2" }, { run: "gone", host: "h1" }], 60_000, "h0"), 1, "for r2, not for a pend no longer listed");
  const [h1, h2] = await Promise.all([b.waitWake("h1", 300, signal), a.waitWake("h2", 300, signal)]);
  t.same([h1, h2], [false, true], "h2 woke, h1 did not");
  t.equal(await a.waitWake("h2", 200, signal), false, "two wake-ups before the wait: one pass, not two");
  // A wait in progress is woken by a wake sent meanwhile, and an abort ends a wait at once.
  const waiting = b.waitWake("h1", 5000, signal);
  await new Promise((r) => setTimeout(r, 100));
  await a.wake([{ run: "r3", host: "h1" }], 60_000, "h0");
  t.equal(await waiting, true, "woken while blocked");
  // r1's wake-up for h2 stands for a minute. A third host's pass giving r1 to h1 wakes nobody;
  // h2's own pass giving it to h1 (h2 filled up, say) wakes h1 at once: h2 will not take it.
  t.equal(await a.wake([{ run: "r1", host: "h1" }], 60_000, "h3"), 0, "another host's pass does not move r1's wake-up");
  t.equal(await a.wake([{ run: "r1", host: "h1" }], 60_000), 0, "nor a pass of no host");
  t.equal(await a.wake([{ run: "r1", host: "h1" }], 60_000, "h2"), 1, "the woken host gives r1 on: h1 is woken at once");
  t.equal(await b.waitWake("h1", 300, signal), true, "h1 woke");
  t.equal(await a.wake([{ run: "r1", host: "h2" }], 60_000, "h3"), 0, "and r1's wake-up stands again, now h1's");
  t.equal(await a.wake([{ run: "r2", host: "h1" }], 60_000, "h3"), 0, "r2's wake-up stands for h2, which has a free slot");
  const [c] = await a.claim([{ run: "r3", host: "h2", flowKey: "f/1", resources: [] }]);
  t.ok(c, "r3 taken");
  t.equal(await a.wake([{ run: "r2", host: "h1" }], 60_000, "h3"), 1, "h2 is full now: its wake-up for r2 no longer stands, and any pass may wake another host");
  t.equal(await b.waitWake("h1", 300, signal), true, "h1 woke for it");
  await a.addPend(pend("rg", ["gpu"], "h0"));
  t.equal(await a.wake([{ run: "rg", host: "h1" }], 60_000, "h3"), 1, "a pend its adopter lacks the tags for is not its adopter's to take: any pass wakes for it");
  t.equal(await b.waitWake("h1", 300, signal), true, "h1 woke for it");
  t.equal(await a.wake([{ run: "r1", host: "h2" }], 0), 1, "a wake-up that stood its time may be sent again");
  const ac = new AbortController();
  const started = Date.now();
  const aborted = b.waitWake("h1", 5000, ac.signal);
  setTimeout(() => ac.abort(), 100);
  t.equal(await aborted, false, "an abort ends the wait");
  t.ok(Date.now() - started < 2000, "at once, not at the wait's end");
  t.equal(await b.waitWake("h1", 100, signal), false, "and the state waits again after it");
});

t.test("embedded: only the host woken for a pend passes it on to another host before its wake-up stood its time", async (t) => {
  const state = new LocalClusterState();
  const signal = new AbortController().signal;
  for (const name of ["h1", "h2", "h3"]) await state.heartbeat({ name, tags: [], slots: 1, running: 0, lastSeen: 0, startedAt: 0 }, LONG);
  await state.addPend(pend("r1", [], "h1"));
  t.equal(await state.wake([{ run: "r1", host: "h2" }], 60_000, "h3"), 0, "within the adoption's stand (h1's wake-up), another host's pass wakes nobody");
  t.equal(await state.wake([{ run: "r1", host: "h2" }], 60_000, "h1"), 1, "h2 woken for r1");
  t.equal(await state.wake([{ run: "r1", host: "h2" }], 60_000, "h1"), 0, "not again while it stands");
  t.equal(await state.wake([{ run: "r1", host: "h3" }], 60_000, "h1"), 0, "another host's pass does not move it");
  t.equal(await state.wake([{ run: "r1", host: "h3" }], 60_000, "h2"), 1, "h2 gives r1 on: h3 woken");
  t.same(await Promise.all([state.waitWake("h2", 50, signal), state.waitWake("h3", 50, signal)]), [true, true], "each woke once");
  t.equal(await state.wake([{ run: "r1", host: "h3" }], 60_000, "h2"), 0, "h3 not again while its wake-up stands");
});

t.test("safety passes: past 10 hosts each host looks every interval × hosts ÷ 10, so the cluster's hosts together look as often as 10 would", async (t) => {
  for (const [n, want] of [
    [5, 50],
    [10, 50],
    [20, 100],
    [500, 2500],
  ] as const) {
    const state = new LocalClusterState();
    for (let i = 1; i <= n; i++) await state.heartbeat({ name: `h${i}`, tags: [], slots: 1, running: 0, lastSeen: 0, startedAt: 0 }, LONG);
    const d = dispatcher(state, "h1", []);
    t.equal(d.safetyIntervalMs(50), 50, `${n} hosts: before any pass, the interval asked`);
    d.open();
    await until(() => d.stats.passes >= 1, 5000, "the opening pass");
    t.equal(d.safetyIntervalMs(50), want, `${n} hosts, nothing pending: ${want} ms`);
    // A pend for another host: a pass reads the hosts (and wakes h2), the pend stays listed.
    await state.addPend(pend("r1", [], "h2"));
    d.kick();
    await until(() => d.stats.snapshots >= 1, 5000, "a pass that read the hosts");
    t.equal(d.safetyIntervalMs(50), want, `${n} hosts, a pend listed: ${want} ms`);
    // kickIfQuiet goes by it: quiet for longer than it, a pass.
    const before = d.stats.passes;
    d.lastPassAt = performance.now() - want - 10;
    d.kickIfQuiet(50);
    await until(() => d.stats.passes > before, 5000, "a safety pass");
    await d.stop();
  }
});
