/**
 * The ClusterState contract as one suite, run against every implementation (the in-process
 * LocalClusterState and the Redis one) by test/store/cluster-state.test.ts: every method,
 * the claim rules, and the run phases that keep a pend from coming back once it moved on.
 * Leases run on real time (short leases, polled), as both implementations keep them.
 */
import type { Test } from "tap";
import { WAKE_STANDS_MS, type Assignment, type ClusterState, type HostRecord, type PendRecord, type Snapshot } from "../../store/cluster-state.js";
import { decide } from "../../hub/dispatch.js";
import { until } from "./hub.js";
import { mulberry32Floats } from "./mulberry32.js";

export type MakeState = (t: Test) => Promise<ClusterState>;

const LONG = 60_000;

export function host(name: string, slots = 2, tags: string[] = []): HostRecord {
  return { name, tags, slots, running: 0, lastSeen: Date.now(), startedAt: Date.now() };
}

export function pend(run: string, o: Partial<PendRecord> = {}): PendRecord {
  return { run, flowKey: "f/1", hostTags: [], resources: [], adoptedBy: "h1", adoptedAt: 1_700_000_000_000, record: JSON.stringify({ run }), ...o };
}

export function assign(p: PendRecord, hostName: string): Assignment {
  return { run: p.run, host: hostName, flowKey: p.flowKey, resources: p.resources, ...(p.concurrency !== undefined ? { concurrency: p.concurrency } : {}) };
}

/** A pend as the snapshot shows it: its record travels with the claim, not the snapshot. */
export function view(p: PendRecord): Omit<PendRecord, "record"> {
  const { record: _, ...v } = p;
  return v;
}

/** A snapshot, whatever the version (a test reads the state it just wrote). */
export async function fullSnapshot(s: ClusterState): Promise<Snapshot> {
  const snap = await s.snapshot();
  if (snap === undefined) throw new Error("snapshot() without a version is never unchanged");
  return snap;
}

async function pendingRuns(s: ClusterState): Promise<string[]> {
  return (await fullSnapshot(s)).pends.map((p) => p.run);
}

/** Registers a host with a lease that lapses at once, and waits until it has. */
async function deadHost(s: ClusterState, name: string, slots = 4): Promise<void> {
  await s.heartbeat(host(name, slots), 150);
  return until(async () => (await s.hosts()).some((h) => h.host.name === name && !h.up), 5000, `lease of ${name} to lapse`);
}

export function contractSuite(t: Test, make: MakeState): void {
  t.test("heartbeat: new, renewed, expired; hosts() and the snapshot show who is up", async (t) => {
    const s = await make(t);
    t.equal(await s.heartbeat(host("h1", 3, ["linux"]), LONG), "new");
    t.equal(await s.heartbeat({ ...host("h1", 3, ["linux"]), running: 1, address: "http://h1:8080" }, LONG), "renewed");
    await deadHost(s, "h2");
    t.equal(await s.heartbeat(host("h2"), LONG), "expired", "a renewal after the lease lapsed says so");
    t.equal(await s.heartbeat(host("h2"), LONG), "renewed");
    await deadHost(s, "h3");
    const hosts = (await s.hosts()).sort((a, b) => (a.host.name < b.host.name ? -1 : 1));
    t.same(hosts.map((h) => [h.host.name, h.up]), [["h1", true], ["h2", true], ["h3", false]]);
    t.match(hosts[0]?.host, { name: "h1", tags: ["linux"], slots: 3, running: 1, address: "http://h1:8080" }, "the latest record is kept");
    const snap = await fullSnapshot(s);
    t.same(snap.hosts.map((h) => h.name).sort(), ["h1", "h2"], "the snapshot lists live hosts only");
    await s.removeHost("h2");
    t.same((await s.hosts()).map((h) => h.host.name).sort(), ["h1", "h3"], "removeHost forgets it");
    t.equal(await s.heartbeat(host("h2"), LONG), "new", "and it comes back as new");
  });

  t.test("addPend keeps adoption order, never doubles a pend; removePend", async (t) => {
    const s = await make(t);
    const ps = ["r3", "r1", "r2", "r0"].map((r, i) => pend(r, { flowKey: `f${i}/2`, hostTags: ["linux", "gpu"], resources: i % 2 ? ["db"] : [], adoptedBy: `h${i}`, adoptedAt: 1_700_000_000_000 + i }));
    ps[1] = { ...(ps[1] as PendRecord), concurrency: 2 };
    for (const p of ps) t.equal(await s.addPend(p), true);
    t.equal(await s.addPend(ps[0] as PendRecord), true, "adding it again says it is pending");
    t.equal(await s.addPend(ps[0] as PendRecord, "recover"), true, "recovering a pend the cluster has pending keeps it");
    const snap = await fullSnapshot(s);
    t.same(snap.pends.map(view), ps.map(view), "FIFO by adoption (not by id), each once, every field kept");
    t.equal(await s.removePend("r1"), true);
    t.equal(await s.removePend("r1"), false, "a second remove finds nothing");
    t.equal(await s.removePend("nope"), false);
    t.same(await pendingRuns(s), ["r3", "r2", "r0"]);
    t.equal(await s.addPend(pend("r5")), true);
    t.same(await pendingRuns(s), ["r3", "r2", "r0", "r5"], "a later pend goes last");
  });

  t.test("claim takes a pend only when every rule allows it", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 2), LONG);
    await s.heartbeat(host("b", 1), LONG);
    await deadHost(s, "dead");
    const ps = {
      ok: pend("ok", { resources: ["db"] }),
      busy: pend("busy", { resources: ["db"] }),
      deadHost: pend("deadHost"),
      unknownHost: pend("unknownHost"),
      full: pend("full"),
      c1: pend("c1", { flowKey: "lim/1", concurrency: 1 }),
      c2: pend("c2", { flowKey: "lim/1", concurrency: 1 }),
      later: pend("later"),
    };
    for (const p of Object.values(ps)) await s.addPend(p);
    const got = await s.claim([
      assign(ps.ok, "a"),
      assign(ps.busy, "b"), // db was just taken by "ok"
      assign(ps.deadHost, "dead"),
      assign(ps.unknownHost, "ghost"),
      assign(ps.c1, "b"),
      assign(ps.full, "b"), // b has one slot, c1 took it
      assign(ps.c2, "a"), // lim/1 allows one active run
      assign(pend("never-added"), "a"),
      assign(ps.ok, "a"), // already taken in this very call
    ]);
    t.same(got.map((c) => c.run), ["ok", "c1"]);
    t.same(got.map((c) => c.record), [ps.ok.record, ps.c1.record], "the claim carries the run's record");
    t.ok(got.every((c) => Number.isSafeInteger(c.token) && c.token > 0), "tokens are positive integers");
    t.equal(new Set(got.map((c) => c.token)).size, 2, "each claim has its own token");
    const snap = await fullSnapshot(s);
    t.same(snap.pends.map((p) => p.run), ["busy", "deadHost", "unknownHost", "full", "c2", "later"], "the refused stay pending, in order");
    t.same([...snap.held], [["db", "ok"]]);
    t.same(Object.fromEntries(snap.activeByFlow), { "f/1": 1, "lim/1": 1 });
    t.same(Object.fromEntries(snap.runningByHost), { a: 1, b: 1 });
    t.same(await s.claim([assign(ps.later, "a")]).then((c) => c.map((x) => x.run)), ["later"], "a has a second slot");
    t.same(await s.claim([assign(ps.full, "a")]), [], "now a is full too");
    t.same(await s.claim([]), []);
  });

  t.test("release frees only with the current token; isCurrent", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 1), LONG);
    await s.addPend(pend("r1", { resources: ["db", "net"] }));
    await s.addPend(pend("r2", { resources: ["db"] }));
    const [c] = await s.claim([assign(pend("r1", { resources: ["db", "net"] }), "a")]);
    if (c === undefined) throw new Error("no claim");
    t.equal(await s.isCurrent("r1", c.token), true);
    t.equal(await s.isCurrent("r1", c.token + 1000), false);
    t.equal(await s.isCurrent("r2", c.token), false, "a pending run has no token");
    t.equal(await s.release("r1", c.token + 1000), false, "a wrong token frees nothing");
    t.equal((await fullSnapshot(s)).held.get("db"), "r1");
    t.same(await s.claim([assign(pend("r2", { resources: ["db"] }), "a")]), [], "db still held, and no slot");
    t.equal(await s.release("r1", c.token), true);
    t.equal(await s.isCurrent("r1", c.token), false, "an ended run's token is not current");
    t.same(await s.releasedBy("r1"), { host: "a", token: c.token }, "the release is remembered with who made it");
    const version = (await fullSnapshot(s)).version;
    t.equal(await s.release("r1", c.token), true, "a repeat of an applied release (its reply lost) answers as the first did");
    t.equal((await fullSnapshot(s)).version, version, "and changes nothing");
    t.equal(await s.release("r1", c.token + 1), false, "another token still frees nothing");
    t.equal(await s.releasedBy("r2"), undefined, "a run nobody released");
    const snap = await fullSnapshot(s);
    t.same([...snap.held], [], "both resources are free");
    t.same([...snap.runningByHost], [], "and the slot");
    t.same([...snap.activeByFlow], []);
    const [c2] = await s.claim([assign(pend("r2", { resources: ["db"] }), "a")]);
    t.ok(c2 !== undefined && c2.token > c.token, "tokens only grow");
  });

  t.test("releaseCounted: the release, and how many listed pends no host is woken for after it (brought back included, parked not)", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 2), LONG);
    const holder = pend("h", { resources: ["db"] });
    const lone = pend("lone");
    await s.addPend(holder);
    await s.addPend(lone);
    const [ch, cl] = await s.claim([assign(holder, "a"), assign(lone, "a")]);
    if (ch === undefined || cl === undefined) throw new Error("no claim");
    const waiter = pend("w", { resources: ["db"] });
    const gpu = pend("g", { hostTags: ["gpu"] });
    await s.addPend(waiter);
    await s.addPend(gpu);
    t.equal(await s.park([{ ...waiter, on: { kind: "resource", resource: "db" } }, { ...gpu, on: { kind: "tags" } }]), 2);
    t.same(await s.releaseCounted("lone", cl.token), { released: true, unattended: 0, refused: [] }, "both waiting pends are parked: a pass would start nothing");
    t.same(await s.releaseCounted("lone", cl.token), { released: true, unattended: 0, refused: [] }, "a repeat answers as the first did");
    t.same(await s.releaseCounted("h", ch.token + 1), { released: false, unattended: 0, refused: [] }, "a wrong token frees nothing");
    t.same(await s.releaseCounted("h", ch.token), { released: true, unattended: 1, refused: [] }, "the freed resource's waiter is back on the list; the gpu pend stays parked");
    t.same(await pendingRuns(s), ["w"]);
    const [cw] = await s.claim([assign(waiter, "a")]);
    if (cw === undefined) throw new Error("no claim");
    const soon = pend("soon");
    await s.heartbeat(host("b", 1), LONG);
    await s.addPend(soon);
    await s.wake([{ run: "soon", host: "b" }], WAKE_STANDS_MS, "a");
    t.same(await s.releaseCounted("w", cw.token), { released: true, unattended: 0, refused: [] }, "a listed pend a host was just woken for is that host's to take: not counted");
    // A pend adopted by a host with a free slot stands for it; its pass may leave it waiting
    // (the slot went to an older pend). That host's own release must not count it attended.
    const [cs] = await s.claim([assign(soon, "b")]);
    if (cs === undefined) throw new Error("no claim");
    const mine = pend("mine", { adoptedBy: "a" });
    await s.addPend(mine);
    const older = pend("older2");
    const [co] = await (async () => {
      await s.addPend(older);
      return s.claim([assign(older, "a")]);
    })();
    if (co === undefined) throw new Error("no claim");
    t.same(await s.releaseCounted("older2", co.token), { released: true, unattended: 1, refused: [] }, "a pend whose stand is the releasing host's own is counted: that host looks again");
  });

  t.test("phases: a run that moved on never comes back as a pend", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 5), LONG);
    // Unknown to the cluster: recovered (a pend found on disk).
    t.equal(await s.addPend(pend("unknown"), "recover"), true);
    t.equal(await s.addPend(pend("never"), "requeue"), false, "requeue needs a reaped run");
    // Taken (active): neither recovered nor requeued.
    await s.addPend(pend("taken"));
    const [c] = await s.claim([assign(pend("taken"), "a")]);
    t.equal(await s.addPend(pend("taken"), "recover"), false, "an active run is not recovered as a pend");
    t.equal(await s.addPend(pend("taken"), "requeue"), false, "nor requeued while its host lives");
    // Done by release, and done by removePend.
    await s.release("taken", c?.token ?? -1);
    t.equal(await s.addPend(pend("taken"), "recover"), false, "a finished run is not recovered");
    t.equal(await s.addPend(pend("taken"), "requeue"), false);
    await s.addPend(pend("cancelled"));
    await s.removePend("cancelled");
    t.equal(await s.addPend(pend("cancelled"), "recover"), false, "a removed pend is not recovered");
    t.equal(await s.addPend(pend("cancelled"), "requeue"), false);
    t.same(await pendingRuns(s), ["unknown"]);
  });

  t.test("hold: re-takes a run only while it is this host's", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 5), LONG);
    await s.heartbeat(host("b", 5), LONG);
    const a = (run: string, h = "a", resources = ["db"]) => ({ run, host: h, flowKey: "f/1", resources });
    const t1 = await s.hold(a("fresh"));
    t.ok(t1 !== undefined && t1 > 0, "a run the cluster never heard of is held (state lost)");
    t.equal((await fullSnapshot(s)).held.get("db"), "fresh");
    t.equal(await s.isCurrent("fresh", t1 ?? -1), true);
    const t2 = await s.hold(a("fresh"));
    t.ok(t2 !== undefined && t2 > (t1 ?? 0), "its own active run, again: a new token");
    t.equal(await s.isCurrent("fresh", t1 ?? -1), false, "the old token is fenced off");
    t.equal((await fullSnapshot(s)).runningByHost.get("a"), 1, "held once, not twice");
    t.equal(await s.hold(a("fresh", "b")), undefined, "another host's active run is not held");
    await s.addPend(pend("p"));
    t.equal(await s.hold(a("p", "a", [])), undefined, "a pending run is not held");
    await s.release("fresh", t2 ?? -1);
    t.equal(await s.hold(a("fresh")), undefined, "an ended run is not held");
    t.same([...(await fullSnapshot(s)).held], []);
  });

  t.test("the version: unchanged state answers nothing; each change a decision depends on moves it", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 2), LONG);
    const v0 = (await fullSnapshot(s)).version;
    t.equal(await s.snapshot(v0), undefined, "nothing changed: no snapshot");
    const empty = await s.snapshot(undefined, { skipIfEmpty: true });
    t.same([empty?.version, empty?.pends, empty?.hosts, empty?.liveHosts], [v0, [], [], 1], "skipIfEmpty: nothing pending answers without the tables, with how many hosts are live");
    await s.heartbeat(host("a", 2), LONG);
    t.equal(await s.snapshot(v0), undefined, "a plain renewal changes nothing");
    const p = pend("v1");
    await s.addPend(p);
    const v1 = (await s.snapshot(v0))?.version;
    t.ok(v1 !== undefined && v1 !== v0, "a new pend moves it");
    const [c] = await s.claim([assign(p, "a")]);
    const v2 = (await s.snapshot(v1))?.version;
    t.ok(v2 !== undefined && v2 !== v1, "a claim moves it");
    await s.release("v1", c?.token ?? -1);
    t.not(await s.snapshot(v2), undefined, "a release moves it");
    const v3 = (await fullSnapshot(s)).version;
    await s.heartbeat(host("a", 3), LONG);
    t.not(await s.snapshot(v3), undefined, "a host whose slots changed moves it");
    // A host's lease lapsing moves no version; a pass that counted on it asks with sameUntil.
    const full = await fullSnapshot(s);
    const end = full.leaseEnds.get("a");
    t.ok(end !== undefined && end > Date.now(), "live hosts come with their lease ends");
    t.equal(await s.snapshot(full.version, { sameUntil: (end ?? 0) }), undefined, "unchanged before sameUntil");
    t.not(await s.snapshot(full.version, { sameUntil: 1 }), undefined, "after sameUntil the same version answers in full");
  });

  t.test("park: pends no live host can run leave the list, in their place, until a host with their tags joins", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("plain", 2, ["linux"]), LONG);
    const gpu1 = pend("g1", { hostTags: ["gpu"] });
    const lin = pend("l1", { hostTags: ["linux"] });
    const gpu2 = pend("g2", { hostTags: ["gpu", "linux"] });
    for (const p of [gpu1, lin, gpu2]) await s.addPend(p);
    const tags = { kind: "tags" } as const;
    t.equal(await s.park([gpu1, lin, gpu2].map((p) => ({ ...p, on: tags }))), 2, "the gpu pends are parked; the linux one has a host");
    t.same(await pendingRuns(s), ["l1"], "a snapshot scans only what some live host can run");
    t.equal(await s.park([{ ...gpu1, on: tags }]), 0, "parked once");
    t.equal(await s.addPend(gpu1, "recover"), true, "a parked pend is still pending (recover finds it)");
    t.same(await pendingRuns(s), ["l1"], "and not doubled");
    const v = (await fullSnapshot(s)).version;
    await s.heartbeat(host("big", 2, ["gpu", "linux"]), LONG);
    const back = await s.snapshot(v);
    t.same(back?.pends.map((p) => p.run), ["g1", "l1", "g2"], "a host with their tags brings them back in adoption order");
    await s.addPend(pend("g3", { hostTags: ["gpu"] }));
    t.equal(await s.park([{ ...pend("g3", { hostTags: ["gpu"] }), on: tags }]), 0, "a pend a live host can run is not parked");
    t.equal(await s.park([{ ...pend("x1", { hostTags: ["arm"] }), on: tags }]), 0, "a run not pending is not parked");
    await s.addPend(pend("a1", { hostTags: ["arm"] }));
    await s.park([{ ...pend("a1", { hostTags: ["arm"] }), on: tags }]);
    t.equal(await s.removePend("a1"), true, "a parked pend can be removed (cancelled)");
    await s.heartbeat(host("armhost", 1, ["arm"]), LONG);
    t.notOk((await pendingRuns(s)).includes("a1"), "and does not come back");
  });

  t.test("park: a live host renewing with new tags brings back what waited for them", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 2, ["linux"]), LONG);
    const gpu = pend("g1", { hostTags: ["gpu"] });
    await s.addPend(gpu);
    t.equal(await s.park([{ ...gpu, on: { kind: "tags" } }]), 1);
    const v = (await fullSnapshot(s)).version;
    t.equal(await s.heartbeat(host("a", 2, ["linux"]), LONG), "renewed");
    t.equal(await s.snapshot(v), undefined, "a renewal with the same tags and slots changes nothing");
    t.equal(await s.heartbeat(host("a", 2, ["gpu", "linux"]), LONG), "renewed", "a renewal with new tags is still a renewal");
    const back = await s.snapshot(v);
    t.same(back?.pends.map((p) => p.run), ["g1"], "and the pend its new tag lets it run is back");
    t.same(back?.hosts.map((h) => [h.name, [...h.tags]]), [["a", ["gpu", "linux"]]], "with the host's new tags");
  });

  t.test("park on a held resource: the release brings back the oldest, one at a time, in adoption order", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 4), LONG);
    const holder = pend("h", { resources: ["db"] });
    await s.addPend(holder);
    const [c] = await s.claim([assign(holder, "a")]);
    const waiting = ["w1", "w2", "w3"].map((run) => pend(run, { resources: ["db"] }));
    for (const p of waiting) await s.addPend(p);
    const on = { kind: "resource", resource: "db" } as const;
    t.equal(await s.park(waiting.map((p) => ({ ...p, on }))), 3);
    t.same(await pendingRuns(s), [], "all three wait off the list");
    await s.release("h", c?.token ?? -1);
    t.same(await pendingRuns(s), ["w1"], "the release brought back the oldest only");
    const [c1] = await s.claim([assign(waiting[0] as PendRecord, "a")]);
    t.same(await pendingRuns(s), [], "its claim takes the lock; the others still wait");
    await s.release("w1", c1?.token ?? -1);
    t.same(await pendingRuns(s), ["w2"], "the next one, in adoption order");
    t.equal(await s.park([{ ...(waiting[1] as PendRecord), on }]), 0, "a pend whose resource is free is not parked");
  });

  t.test("unparkHeads: a free resource's oldest parked pend comes back, unless it is younger than the one first in line", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 4), LONG);
    const holder = pend("h0", { resources: ["db"] });
    await s.addPend(holder);
    const [c] = await s.claim([assign(holder, "a")]);
    const w = ["w1", "w2"].map((run) => pend(run, { resources: ["db"] }));
    for (const p of w) await s.addPend(p);
    const on = { kind: "resource", resource: "db" } as const;
    await s.park(w.map((p) => ({ ...p, on })));
    t.equal(await s.unparkHeads([{ resource: "db" }]), 0, "nothing comes back while the resource is held");
    t.same((await fullSnapshot(s)).parkedOn, new Set(["db"]), "the snapshot says which resources have parked pends");
    await s.release("h0", c?.token ?? -1);
    t.same(await pendingRuns(s), ["w1"], "the release brought back w1");
    const late = pend("l1", { resources: ["db"] });
    await s.addPend(late);
    t.equal(await s.unparkHeads([{ resource: "db", before: "l1" }]), 1, "w2 is older than l1, first in line: it comes back");
    t.same(await pendingRuns(s), ["w1", "w2", "l1"]);
    t.equal(await s.unparkHeads([{ resource: "db", before: "w1" }]), 0, "nothing parked is left on it");
  });

  t.test("park for a slot: refused while a live host with the tags has one; a release brings back the oldest its host can run, one at a time", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 1, ["linux"]), LONG);
    await s.heartbeat(host("g", 1, ["gpu", "linux"]), LONG);
    const on = { kind: "slots" } as const;
    const l0 = pend("l0", { hostTags: ["linux"] });
    await s.addPend(l0);
    t.equal(await s.park([{ ...l0, on }]), 0, "a live host with its tags has a free slot: not parked");
    const g0 = pend("g0", { hostTags: ["gpu"] });
    await s.addPend(g0);
    const [ca, cg] = await s.claim([assign(l0, "a"), assign(g0, "g")]);
    const waiting = [pend("l1", { hostTags: ["linux"] }), pend("g1", { hostTags: ["gpu"] }), pend("l2", { hostTags: ["linux"] }), pend("g2", { hostTags: ["gpu"] })];
    for (const p of waiting) await s.addPend(p);
    t.equal(await s.park(waiting.map((p) => ({ ...p, on }))), 4, "every host full: all four parked");
    const snap = await fullSnapshot(s);
    t.same(snap.pends, [], "off the list");
    t.same(snap.parkedForSlots.map((x) => [...x].sort()).sort(), [["gpu"], ["linux"]], "the snapshot says which tag sets wait for a slot");
    t.equal(await s.addPendTaking(pend("l3", { adoptedBy: "a", hostTags: ["linux"] })), undefined, "a new pend is not taken at once before them");
    t.equal(await s.removePend("l3"), true);
    await s.release("l0", ca?.token ?? -1);
    t.same(await pendingRuns(s), ["l1"], "a's slot freed: the oldest pend a can run came back (not g1: a has no gpu)");
    const [c1] = await s.claim([assign(waiting[0] as PendRecord, "a")]);
    await s.release("g0", cg?.token ?? -1);
    t.same(await pendingRuns(s), ["g1"], "g's slot freed: the oldest pend g can run, of either tag set");
    await s.claim([assign(waiting[1] as PendRecord, "g")]);
    await s.release("l1", c1?.token ?? -1);
    t.same(await pendingRuns(s), ["l2"], "then the next, in adoption order");
    t.same((await fullSnapshot(s)).parkedForSlots, [["gpu"]]);
  });

  t.test("park for a slot: a host joining brings back as many as it has free; unparkHeads brings back a tag set's oldest, unless younger than a pend given a slot", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 1), LONG);
    const busy = pend("b0");
    await s.addPend(busy);
    await s.claim([assign(busy, "a")]);
    const on = { kind: "slots" } as const;
    const waiting = ["w1", "w2", "w3", "w4"].map((run) => pend(run));
    for (const p of waiting) await s.addPend(p);
    t.equal(await s.park(waiting.map((p) => ({ ...p, on }))), 4);
    t.equal(await s.unparkHeads([{ hostTags: ["gpu"] }]), 0, "no pend parked for a slot needs those tags");
    await s.heartbeat(host("n", 2), LONG);
    t.same(await pendingRuns(s), ["w1", "w2"], "a new host with 2 free slots: the two oldest are back");
    const late = pend("l1");
    await s.addPend(late);
    t.equal(await s.unparkHeads([{ hostTags: [], before: "w2" }]), 0, "w3 is younger than w2: it stays");
    t.equal(await s.unparkHeads([{ hostTags: [], before: "l1" }]), 1, "w3 is older than l1: it comes back");
    t.equal(await s.unparkHeads([{ hostTags: [] }]), 1, "without before: the oldest left");
    t.same(await pendingRuns(s), ["w1", "w2", "w3", "w4", "l1"], "each in its place");
    t.same((await fullSnapshot(s)).parkedForSlots, []);
  });

  t.test("park on concurrency: a run of the flow ending brings back the oldest, in its place", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 4), LONG);
    const first = pend("f1", { flowKey: "f/1", concurrency: 1 });
    await s.addPend(first);
    const [c] = await s.claim([assign(first, "a")]);
    const second = pend("f2", { flowKey: "f/1", concurrency: 1, resources: ["cache"] });
    await s.addPend(second);
    // A pend waits on "cache" too, parked while a third run holds it.
    const holder = pend("hc", { resources: ["cache"] });
    await s.addPend(holder);
    const [ch] = await s.claim([assign(holder, "a")]);
    const queued = pend("q", { resources: ["cache"] });
    await s.addPend(queued);
    await s.park([{ ...queued, on: { kind: "resource", resource: "cache" } }]);
    await s.release("hc", ch?.token ?? -1);
    t.same(await pendingRuns(s), ["f2", "q"], "the release brought q back");
    t.equal(await s.park([{ ...second, on: { kind: "concurrency", limit: 1 } }]), 1, "f2 is parked on its flow's limit");
    t.same(await pendingRuns(s), ["q"]);
    await s.release("f1", c?.token ?? -1);
    t.same(await pendingRuns(s), ["f2", "q"], "a run of the flow ending brings f2 back, in its place");
  });

  t.test("park on concurrency: an end brings back as many as the limit has room for, oldest first", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 10), LONG);
    const limited = (run: string) => pend(run, { flowKey: "g/1", concurrency: 2 });
    const running = [limited("g1"), limited("g2")];
    for (const p of running) await s.addPend(p);
    const claimed = await s.claim(running.map((p) => assign(p, "a")));
    const queue = ["g3", "g4", "g5", "g6", "g7"].map(limited);
    for (const p of queue) await s.addPend(p);
    t.equal(await s.park(queue.map((p) => ({ ...p, on: { kind: "concurrency", limit: 2 } }))), 5);
    t.same(await pendingRuns(s), []);
    await s.release("g1", claimed[0]?.token ?? -1);
    t.same(await pendingRuns(s), ["g3"], "one end, room for one: the oldest, not the whole queue");
    await s.release("g2", claimed[1]?.token ?? -1);
    // Room for two: two more (one already back is not counted; one too many back costs a pass that parks it again).
    t.same(await pendingRuns(s), ["g3", "g4", "g5"], "another end, room for two: the next two come back; g6 and g7 stay parked");
  });

  t.test("reapDead waits out the lost host's margin past its lease end", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("live", 5), LONG);
    await s.heartbeat(host("slow", 5), 150, 1200);
    const p = pend("m1", { resources: ["db"] });
    await s.addPend(p);
    t.equal((await s.claim([assign(p, "slow")])).length, 1);
    await until(async () => (await s.hosts()).some((h) => h.host.name === "slow" && !h.up), 5000, "lease of slow to lapse");
    t.same(await s.reapDead(), [], "a lapsed lease within its margin: its runs stay (the host may still be stopping their tasks)");
    t.same([...(await fullSnapshot(s)).held], [["db", "m1"]], "and its locks are held");
    let reaped: string[] = [];
    await until(async () => (reaped = (await s.reapDead()).map((r) => r.run)).length > 0, 5000, "the margin to pass");
    t.same(reaped, ["m1"], "past the margin they are reaped");
  });

  t.test("reapDead: a lost host's runs are freed once, marked reaped, and only they requeue", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("live", 5), LONG);
    await s.heartbeat(host("doomed", 5), LONG);
    const ps = [pend("d1", { resources: ["db"] }), pend("d2", { flowKey: "g/1", resources: ["x", "y"] }), pend("l1", { resources: ["z"] })];
    for (const p of ps) await s.addPend(p);
    const got = await s.claim([assign(ps[0] as PendRecord, "doomed"), assign(ps[1] as PendRecord, "doomed"), assign(ps[2] as PendRecord, "live")]);
    t.equal(got.length, 3);
    const token = new Map(got.map((c) => [c.run, c.token]));
    t.same(await s.reapDead(), [], "nothing to reap while every lease holds");
    await deadHost(s, "doomed");
    const reaped = (await s.reapDead()).sort((x, y) => (x.run < y.run ? -1 : 1));
    t.same(reaped, [
      { run: "d1", host: "doomed", token: token.get("d1"), flowKey: "f/1", resources: ["db"] },
      { run: "d2", host: "doomed", token: token.get("d2"), flowKey: "g/1", resources: ["x", "y"] },
    ]);
    t.same(await s.reapDead(), [], "each is reaped once");
    const snap = await fullSnapshot(s);
    t.same([...snap.held], [["z", "l1"]], "their resources are free; the live host's are not");
    t.same(Object.fromEntries(snap.runningByHost), { live: 1 });
    t.equal(await s.isCurrent("d1", token.get("d1") ?? -1), false, "the lost host's token is fenced off");
    t.equal(await s.release("d1", token.get("d1") ?? -1), false, "and it can not release");
    t.equal(await s.hold({ run: "d1", host: "doomed", flowKey: "f/1", resources: ["db"] }), undefined, "nor resume it after a restart");
    t.equal(await s.addPend(pend("d1"), "recover"), false, "nor recover it as a pend");
    t.equal(await s.addPend(pend("d1", { record: "attempt 2" }), "requeue"), true, "a reaped run requeues");
    t.equal(await s.addPend(pend("d1"), "requeue"), false, "once: it is pending again, not reaped");
    t.equal(await s.addPend(pend("l1"), "requeue"), false, "a live host's run does not");
    t.same(await pendingRuns(s), ["d1"]);
    await s.heartbeat(host("b", 1), LONG);
    const [again] = await s.claim([assign(pend("d1", { resources: ["db"] }), "b")]);
    t.equal(again?.record, "attempt 2", "the new attempt's record travels with it");
    t.ok((again?.token ?? 0) > (token.get("d2") ?? Infinity), "with a new token");
  });

  t.test("run index: filters, newest first, before, limit, state moves, nodes", async (t) => {
    const s = await make(t);
    const runs = [
      { run: "01A", flow: "build", state: "archived" },
      { run: "01B", flow: "deploy", state: "archived" },
      { run: "01C", flow: "build", state: "active" },
      { run: "01D", flow: "build", state: "pending" },
      { run: "01E", flow: "deploy", state: "active" },
    ] as const;
    for (const r of runs) await s.indexRun({ ...r, json: `{"run":"${r.run}","s":"${r.state}"}` });
    const ids = (xs: string[]) => xs.map((j) => (JSON.parse(j) as { run: string }).run);
    t.same(ids(await s.listRuns({ limit: 10 })), ["01E", "01D", "01C", "01B", "01A"], "newest first");
    t.same(ids(await s.listRuns({ limit: 2 })), ["01E", "01D"]);
    t.same(ids(await s.listRuns({ limit: 10, before: "01D" })), ["01C", "01B", "01A"], "before is exclusive");
    t.same(ids(await s.listRuns({ limit: 10, flow: "build" })), ["01D", "01C", "01A"]);
    t.same(ids(await s.listRuns({ limit: 10, state: "active" })), ["01E", "01C"]);
    t.same(ids(await s.listRuns({ limit: 10, flow: "build", state: "archived" })), ["01A"]);
    t.same(ids(await s.listRuns({ limit: 1, flow: "deploy", before: "01E" })), ["01B"]);
    t.same(await s.listRuns({ limit: 10, flow: "nope" }), []);
    t.same(await s.countRuns("build"), { pending: 1, active: 1, archived: 1 }, "counts by state, per flow");
    t.same(await s.countRuns("nope"), { pending: 0, active: 0, archived: 0 });
    t.same(await s.listRuns({ limit: 0 }), []);
    await s.indexRun({ run: "01C", flow: "build", state: "archived", json: `{"run":"01C","s":"archived"}` });
    t.same(ids(await s.listRuns({ limit: 10, state: "active" })), ["01E"], "a state change moves the run");
    t.same(ids(await s.listRuns({ limit: 10, flow: "build", state: "archived" })), ["01C", "01A"]);
    t.same(await s.listRuns({ limit: 10, flow: "build", state: "active" }), []);
    await s.indexRun({ run: "01C", flow: "build", state: "active", json: `{"run":"01C","s":"active"}` });
    t.same(ids(await s.listRuns({ limit: 10, flow: "build", state: "archived" })), ["01C", "01A"], "an ended run stays ended: a late write of an earlier state is ignored");
    t.same(await s.listRuns({ limit: 10, flow: "build", state: "active" }), []);
    // A write held back by a partition (its host's bytes delivered when it heals) must not
    // undo a later state: within an attempt a run only goes on; a requeue's attempt is newer.
    await s.indexRun({ run: "01F", flow: "late", state: "active", json: `{"run":"01F","attempt":1,"s":"active"}` });
    await s.indexRun({ run: "01F", flow: "late", state: "pending", json: `{"run":"01F","attempt":1,"s":"pending"}` });
    t.same(ids(await s.listRuns({ limit: 10, flow: "late", state: "active" })), ["01F"], "a late pending of the same attempt does not undo active");
    await s.indexRun({ run: "01F", flow: "late", state: "pending", json: `{"run":"01F","attempt":2,"s":"pending"}` });
    t.same(ids(await s.listRuns({ limit: 10, flow: "late", state: "pending" })), ["01F"], "a requeue's pending, of a later attempt, does");
    await s.indexRun({ run: "01F", flow: "late", state: "active", json: `{"run":"01F","attempt":1,"s":"active"}` });
    t.same(ids(await s.listRuns({ limit: 10, flow: "late", state: "pending" })), ["01F"], "and a late active of the earlier attempt does not undo it");
    await s.indexNode("01C", "checkout", '{"state":"good"}');
    await s.indexNode("01C", "build", '{"state":"running"}');
    await s.indexNode("01C", "build", '{"state":"bad"}');
    t.same(await s.getRun("01C"), { json: `{"run":"01C","s":"archived"}`, nodes: { checkout: '{"state":"good"}', build: '{"state":"bad"}' } });
    t.same(await s.getRun("01A"), { json: `{"run":"01A","s":"archived"}`, nodes: {} });
    t.equal(await s.getRun("nope"), undefined);
  });

  t.test("run index: a batch of writes applies as the same writes one by one", async (t) => {
    const s = await make(t);
    await s.indexRun({ run: "01A", flow: "build", state: "archived", json: "a-archived" });
    const { refused } = await s.indexBatch([
      { kind: "run", run: "01B", flow: "build", state: "pending", json: "b-pending" },
      { kind: "node", run: "01B", node: "x", json: "x1" },
      { kind: "run", run: "01A", flow: "build", state: "active", json: "a-active" },
      { kind: "run", run: "01B", flow: "build", state: "active", json: "b-active" },
      { kind: "node", run: "01B", node: "x", json: "x2" },
      { kind: "run", run: "01C", flow: "deploy", state: "pending", json: "c-pending" },
      { kind: "run", run: "01B", flow: "build", state: "archived", json: "b-archived" },
    ]);
    t.same(refused, []);
    t.same(await s.listRuns({ limit: 10 }), ["c-pending", "b-archived", "a-archived"], "an ended run stays ended within a batch too");
    t.same(await s.countRuns("build"), { pending: 0, active: 0, archived: 2 });
    t.same(await s.countRuns("deploy"), { pending: 1, active: 0, archived: 0 });
    t.same(await s.getRun("01B"), { json: "b-archived", nodes: { x: "x2" } });
    t.same((await s.indexBatch([])).refused, [], "an empty batch does nothing");
  });

  t.test("releaseCounted with index writes: applied with the release, only if it is released", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 2), LONG);
    const p1 = pend("01R");
    await s.addPend(p1);
    await s.indexRun({ run: "01R", flow: "build", state: "pending", json: "r-pending" });
    const [c] = await s.claim([assign(p1, "a")]);
    if (c === undefined) throw new Error("no claim");
    const writes = [
      { kind: "run", run: "01R", flow: "build", state: "active", json: "r-active" },
      { kind: "node", run: "01R", node: "x", json: "x-done" },
      { kind: "run", run: "01R", flow: "build", state: "archived", json: "r-archived" },
    ] as const;
    t.same(await s.releaseCounted("01R", c.token + 1, writes), { released: false, unattended: 0, refused: [] }, "refused: a wrong token");
    t.same(await s.getRun("01R"), { json: "r-pending", nodes: {} }, "and the index is as it was");
    t.same(await s.releaseCounted("01R", c.token, writes), { released: true, unattended: 0, refused: [] });
    t.same(await s.getRun("01R"), { json: "r-archived", nodes: { x: "x-done" } }, "the writes applied, in order");
    t.same(await s.countRuns("build"), { pending: 0, active: 0, archived: 1 });
    const late = [{ kind: "node", run: "01R", node: "y", json: "y-done" }] as const;
    t.same(await s.releaseCounted("01R", c.token, late), { released: true, unattended: 0, refused: [] }, "a repeat (its reply lost) answers as the first");
    t.same(await s.getRun("01R"), { json: "r-archived", nodes: { x: "x-done", y: "y-done" } }, "and applies the writes it carries, as the first would have");
  });

  t.test("addPend with index writes: applied with the pend, only if it is added", async (t) => {
    const s = await make(t);
    const w = [{ kind: "run", run: "01P", flow: "build", state: "pending", json: "p-pending" }] as const;
    t.equal(await s.addPend(pend("01P"), "new", w), true);
    t.same(await s.getRun("01P"), { json: "p-pending", nodes: {} }, "the index has the run as the pend is added");
    t.equal(await s.addPend(pend("01Q"), "requeue", [{ kind: "run", run: "01Q", flow: "build", state: "pending", json: "q" }]), false, "a requeue of a run not reaped adds nothing");
    t.equal(await s.getRun("01Q"), undefined, "and writes nothing to the index");
  });

  t.test("addPendTaking: the adopting host takes the run at once, in the same step, where a pass would give it to that host", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 2, ["linux"]), LONG);
    await s.heartbeat(host("b", 2, ["linux"]), LONG);
    const w = [{ kind: "run", run: "t1", flow: "build", state: "pending", json: "t1-pending" }] as const;
    const p1 = pend("t1", { adoptedBy: "a", hostTags: ["linux"], resources: ["db"], record: '{"t":1}' });
    const c1 = await s.addPendTaking(p1, w);
    t.match(c1, { run: "t1", record: '{"t":1}' }, "both hosts idle: the adopter among the freest takes it");
    t.ok(c1 !== undefined && Number.isSafeInteger(c1.token) && c1.token > 0, "with a fencing token");
    t.equal(await s.isCurrent("t1", c1?.token ?? -1), true, "the token is the run's");
    let snap = await fullSnapshot(s);
    t.same(snap.pends, [], "it never went on the list");
    t.same([...snap.held], [["db", "t1"]], "its resource is held");
    t.same(Object.fromEntries(snap.runningByHost), { a: 1 });
    t.same(await s.getRun("t1"), { json: "t1-pending", nodes: {} }, "its index entry came with it");
    t.equal(await s.getRecord("t1"), '{"t":1}', "its record is kept, as addPend's");
    t.equal(await s.addPend(pend("t1"), "recover"), false, "an active run: not recovered as a pend");

    t.equal(await s.addPendTaking(pend("t2", { adoptedBy: "a", hostTags: ["linux"] })), undefined, "b has more free slots: the pass decides");
    t.same(await pendingRuns(s), ["t2"], "the pend is on the list as addPend leaves it");
    t.equal(await s.addPendTaking(pend("t3", { adoptedBy: "b", hostTags: ["linux"], resources: ["net"] })), undefined, "a pend listed before it, and this one needs a resource: the pass decides");
    t.equal(await s.addPendTaking(pend("t3c", { adoptedBy: "b", hostTags: ["linux"], flowKey: "c/1", concurrency: 5 })), undefined, "…or has a concurrency limit");
    t.equal(await s.removePend("t3c"), true);
    t.same(await pendingRuns(s), ["t2", "t3"]);
    t.equal(await s.addPendTaking(pend("t3p", { adoptedBy: "b", hostTags: ["linux"] })), undefined, "a plain run, but b has no more free slots (2) than pends are listed (2)");
    t.equal(await s.removePend("t3p"), true);
    t.equal(await s.removePend("t3"), true);
    const plain = await s.addPendTaking(pend("t3q", { adoptedBy: "b", hostTags: ["linux"] }));
    t.ok(plain !== undefined, "a plain run, and b keeps a free slot for the one pend listed: taken");
    t.same(await pendingRuns(s), ["t2"]);
    await s.release("t3q", plain?.token ?? -1);
    t.ok(await s.addPend(pend("t3", { adoptedBy: "b", hostTags: ["linux"], resources: ["net"] })));
    const listed = await s.claim([assign(pend("t2"), "b"), assign(pend("t3", { resources: ["net"] }), "b")]);
    t.equal(listed.length, 2);
    const c1b = await s.claim([]);
    t.same(c1b, []);
    snap = await fullSnapshot(s);
    t.same(Object.fromEntries(snap.runningByHost), { a: 1, b: 2 });
    t.equal(await s.addPendTaking(pend("t4", { adoptedBy: "b", hostTags: ["linux"] })), undefined, "a full adopter takes nothing");
    t.equal(await s.removePend("t4"), true);
    t.equal(await s.addPendTaking(pend("t5", { adoptedBy: "a", resources: ["db"] })), undefined, "a held resource: the pass decides (and parks)");
    t.equal(await s.removePend("t5"), true);
    t.equal(await s.addPendTaking(pend("t6", { adoptedBy: "a", hostTags: ["gpu"] })), undefined, "an adopter without the tags takes nothing");
    t.equal(await s.removePend("t6"), true);
    t.equal(await s.addPendTaking(pend("t7", { adoptedBy: "ghost" })), undefined, "an unknown adopter takes nothing");
    t.equal(await s.removePend("t7"), true);
    const c8 = await s.addPendTaking(pend("t8", { adoptedBy: "a", hostTags: ["linux"], flowKey: "lim/1", concurrency: 1 }));
    t.ok(c8 !== undefined, "a has a free slot and nobody has more: taken");
    await s.release("t1", c1?.token ?? -1);
    t.equal(await s.addPendTaking(pend("t9", { adoptedBy: "a", flowKey: "lim/1", concurrency: 1 })), undefined, "the flow's concurrency is reached: the pass decides");
    t.equal(await s.removePend("t9"), true);
  });

  t.test("addPendTaking: a pend parked or listed before it is never overtaken; a dead adopter takes nothing; dead or untagged hosts with more slots do not count", async (t) => {
    const s = await make(t);
    await s.heartbeat(host("a", 1, ["linux"]), LONG);
    await s.heartbeat(host("gpu", 8, ["gpu"]), LONG);
    await deadHost(s, "dead", 8);
    const holder = pend("holder", { adoptedBy: "a", hostTags: ["linux"], resources: ["db"] });
    const ch = await s.addPendTaking(holder);
    t.ok(ch !== undefined, "hosts with more slots are dead or lack the tags: a takes it");
    await s.heartbeat(host("a", 3, ["linux"]), LONG);
    const waiter = pend("waiter", { adoptedBy: "a", hostTags: ["linux"], resources: ["db"] });
    t.equal(await s.addPendTaking(waiter), undefined);
    t.equal(await s.park([{ ...waiter, on: { kind: "resource", resource: "db" } }]), 1);
    t.same(await pendingRuns(s), [], "the waiter is parked on db");
    await s.release("holder", ch?.token ?? -1);
    t.same(await pendingRuns(s), ["waiter"], "the release brought it back");
    t.equal(await s.park([{ ...waiter, on: { kind: "resource", resource: "db" } }]), 0, "db is free: not parked again");
    const cw = await s.claim([assign(waiter, "a")]);
    t.equal(cw.length, 1);
    const second = pend("second", { adoptedBy: "a", hostTags: ["linux"], resources: ["db"] });
    t.equal(await s.addPendTaking(second), undefined);
    t.equal(await s.park([{ ...second, on: { kind: "resource", resource: "db" } }]), 1);
    await s.heartbeat(host("a", 3, ["linux"]), LONG);
    t.equal(await s.addPendTaking(pend("third", { adoptedBy: "a", hostTags: ["linux"], resources: ["db", "net"] })), undefined, "db is held and a pend is parked on it: never overtaken");
    t.equal(await s.removePend("third"), true);
    t.equal(await s.addPendTaking(pend("other", { adoptedBy: "a", hostTags: ["linux"], resources: ["net"] })) !== undefined, true, "a pend parked on db holds nothing else back");
    const lim = (run: string) => pend(run, { adoptedBy: "a", hostTags: ["linux"], flowKey: "lim/1", concurrency: 1 });
    const l1 = await s.addPendTaking(lim("l1"));
    t.ok(l1 !== undefined);
    t.equal(await s.addPendTaking(lim("l2")), undefined);
    t.equal(await s.park([{ ...lim("l2"), on: { kind: "concurrency", limit: 1 } }]), 1);
    await s.release("l1", l1?.token ?? -1);
    t.same(await pendingRuns(s), ["l2"], "the flow's end brought l2 back");
    t.equal(await s.addPendTaking(lim("l3")), undefined, "l2 is older and listed: l3 waits its turn");
    await deadHost(s, "a", 3);
    await s.heartbeat(host("gpu", 8, ["gpu", "linux"]), LONG);
    await s.claim([assign(lim("l2"), "gpu")]);
    t.equal(await s.removePend("l3"), true);
    const alone = await make(t);
    await deadHost(alone, "solo", 2);
    t.equal(await alone.addPendTaking(pend("late", { adoptedBy: "solo" })), undefined, "a dead adopter takes nothing, though nobody has more free slots");
    t.same(await pendingRuns(alone), ["late"]);
  });

  t.test("addPendTaking agrees with dispatch's rule: taken exactly when decide() gives the run to its adopter (seeded)", async (t) => {
    const rnd = mulberry32Floats(16_2026);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const tagSets = [[], ["linux"], ["gpu"], ["linux", "gpu"]];
    let takes = 0;
    for (let round = 0; round < 40; round++) {
      const s = await make(t);
      const names = ["h1", "h2", "h3", "h4"].slice(0, 1 + Math.floor(rnd() * 4));
      for (const n of names) await s.heartbeat(host(n, 1 + Math.floor(rnd() * 3), [...pick(tagSets)]), LONG);
      // Runs already active: a random share of the cluster's slots, resources and a limited flow.
      for (let i = 0, n = Math.floor(rnd() * 6); i < n; i++) {
        const q = pend(`old${i}`, { adoptedBy: pick(names), resources: rnd() < 0.4 ? [pick(["db", "net"])] : [], ...(rnd() < 0.3 ? { flowKey: "lim/1", concurrency: 2 } : {}) });
        await s.addPend(q);
        const got = await s.claim([assign(q, pick(names))]);
        if (got.length === 0) await s.removePend(q.run);
      }
      const p = pend(`new${round}`, { adoptedBy: pick(names), hostTags: [...pick(tagSets)].sort(), resources: rnd() < 0.4 ? [pick(["db", "net"])] : [], ...(rnd() < 0.3 ? { flowKey: "lim/1", concurrency: 2 } : {}) });
      const before = await fullSnapshot(s);
      t.same(before.pends, [], "the list is empty before");
      const hosts = before.hosts.map((h) => ({ name: h.name, tags: h.tags, freeSlots: h.slots - (before.runningByHost.get(h.name) ?? 0) }));
      const d = decide({ pends: [view(p)], hosts, held: before.held, activeByFlow: before.activeByFlow });
      const expected = d.assign.some((a) => a.run === p.run && a.host === p.adoptedBy);
      const c = await s.addPendTaking(p);
      t.equal(c !== undefined, expected, `round ${round}: ${JSON.stringify({ hosts, held: [...before.held], active: [...before.activeByFlow], p: view(p) })}`);
      if (c !== undefined) takes++;
    }
    t.ok(takes > 5 && takes < 35, `both outcomes come up (${takes} of 40 taken)`);
  });

  t.test("a pend added with a record makes it the run's record; one already pending keeps its own", async (t) => {
    const s = await make(t);
    t.equal(await s.addPend(pend("p1", { record: '{"attempt":1}' })), true);
    t.equal(await s.getRecord("p1"), '{"attempt":1}', "kept by the step that added the pend");
    t.equal(await s.addPend(pend("p1", { record: '{"attempt":9}' }), "recover"), true, "still pending");
    t.equal(await s.getRecord("p1"), '{"attempt":1}', "not replaced by a pend that was there already");
    t.equal(await s.addPend(pend("p2", { record: "" })), true);
    t.equal(await s.getRecord("p2"), undefined, "an embedded pend (no record) keeps none");
  });

  t.test("followValue: each heartbeat reads the followed value with it", async (t) => {
    const s = await make(t);
    s.followValue("mark");
    await s.setValue("mark", "v1");
    t.equal(await s.heartbeat(host("h1"), LONG), "new");
    t.same(s.valueAtHeartbeat("mark"), { value: "v1" }, "read by the first (whole) heartbeat");
    await s.setValue("mark", "v2");
    t.equal(await s.heartbeat(host("h1"), LONG), "renewed");
    t.same(s.valueAtHeartbeat("mark"), { value: "v2" }, "and by a renewal");
    await s.setValue("mark", "");
    await s.heartbeat(host("h1"), LONG);
    t.same(s.valueAtHeartbeat("mark"), { value: "" }, "an empty value is a value");
    await s.deleteValue("mark");
    await s.heartbeat(host("h1"), LONG);
    t.same(s.valueAtHeartbeat("mark"), { value: undefined }, "a deleted one is none");
  });

  t.test("hostsAtHeartbeat: the registry's size, live or not, as the last heartbeat read it", async (t) => {
    const s = await make(t);
    t.equal(await s.heartbeat(host("h1"), LONG), "new");
    t.equal(s.hostsAtHeartbeat(), 1, "this host");
    await s.heartbeat(host("h2"), 1);
    await s.heartbeat(host("h3"), LONG);
    await new Promise((r) => setTimeout(r, 20));
    await s.heartbeat(host("h1"), LONG);
    t.equal(s.hostsAtHeartbeat(), 3, "a host whose lease lapsed still counts until it is removed");
    await s.removeHost("h2");
    await s.heartbeat(host("h1"), LONG);
    t.equal(s.hostsAtHeartbeat(), 2, "a removed host does not");
  });

  t.test("no record for an unknown run; ticks and values", async (t) => {
    const s = await make(t);
    t.equal(await s.getRecord("r1"), undefined);
    t.equal(await s.claimTick("cron:a", 300), true, "the first caller fires");
    t.equal(await s.claimTick("cron:a", 300), false, "no one else within the ttl");
    t.equal(await s.claimTick("cron:b", 300), true, "another key is independent");
    await until(() => s.claimTick("cron:a", 60_000), 5000, "the tick to be claimable again after its ttl");
    t.equal(await s.claimTick("cron:a", 60_000), false);
    t.equal(await s.getValue("k"), undefined);
    await s.setValue("k", "v1");
    await s.setValue("k", "v2");
    await s.setValue("k2", "");
    t.equal(await s.getValue("k"), "v2");
    t.equal(await s.getValue("k2"), "", "an empty value is a value");
    await s.deleteValue("k");
    await s.deleteValue("never-set");
    t.equal(await s.getValue("k"), undefined, "a deleted value is gone");
    t.equal(await s.getValue("k2"), "", "and only that one");
    await s.close();
  });
}
