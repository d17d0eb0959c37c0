/**
 * Parking changes no decision (a property, seeded): for random small clusters and backlogs,
 * a state whose dispatcher parks what dispatch.ts says may be parked starts exactly the runs,
 * on exactly the hosts, that the pure decide() rule starts over the whole pending list —
 * step after step, as runs end, pends arrive and hosts with new tags join; for pends parked
 * on their tags, a resource, their flow's concurrency and a slot.
 */
import t from "tap";
import { LocalClusterState, type HostRecord, type PendRecord, type Snapshot } from "../../hub/cluster-state.js";
import { decide, parkingMayFree } from "../../hub/dispatch.js";
import { mulberry32Floats } from "../helpers/mulberry32.js";

const SEEDS = Number(process.env["FLOE_PROPERTY_SEEDS"] ?? 60);

function hostRec(name: string, tags: string[], slots: number): HostRecord {
  return { name, tags, slots, running: 0, lastSeen: 0, startedAt: 0 };
}

function decideOver(snap: Snapshot): ReturnType<typeof decide> {
  return decide({ pends: snap.pends, hosts: snap.hosts.map((h) => ({ name: h.name, tags: h.tags, freeSlots: h.slots - (snap.runningByHost.get(h.name) ?? 0) })), held: snap.held, activeByFlow: snap.activeByFlow, parkedForSlots: snap.parkedForSlots });
}

/** How many pends were parked, by what they waited for, over all seeds: every kind must occur, or the property says little. */
const parkedKinds = new Map<string, number>();

async function full(s: LocalClusterState): Promise<Snapshot> {
  const snap = await s.snapshot();
  if (snap === undefined) throw new Error("a snapshot without a version is never unchanged");
  return snap;
}

async function trial(seed: number): Promise<string | undefined> {
  const rnd = mulberry32Floats(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const reference = new LocalClusterState(); // decide over everything, parks nothing
  const parking = new LocalClusterState(); // parks what the dispatcher would
  const both = async (f: (s: LocalClusterState) => Promise<unknown>): Promise<void> => {
    await f(reference);
    await f(parking);
  };
  const tagsPool = [[], ["linux"], ["gpu"], ["linux", "gpu"], ["arm"]];
  const hosts = [hostRec("h1", ["linux"], 1 + Math.floor(rnd() * 3)), hostRec("h2", ["linux", "gpu"], 1 + Math.floor(rnd() * 2))];
  for (const h of hosts) await both((s) => s.heartbeat(h, 3_600_000));
  // A flow version's pends need the same host tags (they are the flow's), as in floe; several
  // flows of each kind, so that limited flows with different tags meet.
  const flows = [
    { flowKey: "a/1", hostTags: pick(tagsPool) },
    { flowKey: "b/1", concurrency: 1, hostTags: pick(tagsPool) },
    { flowKey: "c/1", concurrency: 2, hostTags: pick(tagsPool) },
    { flowKey: "d/1", concurrency: 1, hostTags: pick(tagsPool) },
    { flowKey: "e/1", hostTags: pick(tagsPool) },
  ];
  let n = 0;
  const active = new Map<string, { ref: number; park: number }>();
  const newPend = (): PendRecord => {
    const f = pick(flows);
    const resources = rnd() < 0.4 ? [] : rnd() < 0.75 ? [pick(["db", "cache"])] : ["db", "cache"];
    return { run: `r${String(++n).padStart(4, "0")}`, flowKey: f.flowKey, ...(f.concurrency !== undefined ? { concurrency: f.concurrency } : {}), hostTags: f.hostTags, resources, adoptedBy: "h1", adoptedAt: n, record: "" };
  };
  for (let i = 0; i < 6; i++) {
    const p = newPend();
    await both((s) => s.addPend(p));
  }
  for (let step = 0; step < 40; step++) {
    const ref = decideOver(await full(reference));
    // As the dispatcher does: park, and decide again when parking may have brought pends back.
    let mine: ReturnType<typeof decide>;
    for (;;) {
      // As the dispatcher reads it: an empty list answers with nothing else (no decision), so
      // what a release or a heartbeat must bring back is not left to a pass to find.
      const snap = await parking.snapshot(undefined, { skipIfEmpty: true });
      if (snap === undefined) throw new Error("a snapshot without a version is never unchanged");
      mine = decideOver(snap);
      const byRun = new Map(snap.pends.map((p) => [p.run, p]));
      const parked = mine.park.flatMap(({ run, on }) => { const p = byRun.get(run); return p === undefined ? [] : [{ ...p, on }]; });
      if (process.env["FLOE_PROPERTY_TRACE"] === String(seed)) console.log(step, "list", JSON.stringify(snap.pends.map((p) => p.run)), "held", JSON.stringify([...snap.held]), "assign", JSON.stringify(mine.assign), "park", JSON.stringify(mine.park));
      await parking.park(parked);
      for (const p of parked) parkedKinds.set(p.on.kind, (parkedKinds.get(p.on.kind) ?? 0) + 1);
      const decided = mine;
      const free = [...snap.parkedOn].filter((r) => !snap.held.has(r)).map((resource) => ({ resource, ...(decided.firstInLine.has(resource) ? { before: decided.firstInLine.get(resource) as string } : {}) }));
      const heads = [...free, ...decided.slotHeads];
      const back = heads.length > 0 ? await parking.unparkHeads(heads) : 0;
      if (back === 0 && !parkingMayFree(parked)) break;
    }
    const a = JSON.stringify(ref.assign);
    const b = JSON.stringify(mine.assign);
    if (a !== b) return `seed ${seed}, step ${step}: decide over everything starts ${a}, the parking state ${b}` + (process.env["FLOE_PROPERTY_TRACE"] === String(seed) ? ` ${JSON.stringify((await full(reference)).pends.map((p) => [p.run, p.flowKey, p.hostTags, p.resources]))} hosts ${JSON.stringify(hosts.map((h) => [h.name, h.tags, h.slots]))}` : "");
    for (const x of ref.assign) {
      const p = (await full(reference)).pends.find((q) => q.run === x.run) as PendRecord;
      const assignment = { run: x.run, host: x.host, flowKey: p.flowKey, resources: p.resources, ...(p.concurrency !== undefined ? { concurrency: p.concurrency } : {}) };
      const [cr] = await reference.claim([assignment]);
      const [cp] = await parking.claim([assignment]);
      if (cr === undefined || cp === undefined) return `seed ${seed}, step ${step}: claim of ${x.run} refused (${cr === undefined ? "reference" : "parking"})`;
      active.set(x.run, { ref: cr.token, park: cp.token });
    }
    // Something changes: a run ends, a pend arrives, a host with new tags joins.
    const r = rnd();
    if (r < 0.5 && active.size > 0) {
      const run = pick([...active.keys()]);
      const tok = active.get(run) as { ref: number; park: number };
      active.delete(run);
      await reference.release(run, tok.ref);
      await parking.release(run, tok.park);
    } else if (r < 0.9) {
      const p = newPend();
      await both((s) => s.addPend(p));
    } else if (hosts.length < 4) {
      const h = hostRec(`h${hosts.length + 1}`, pick(tagsPool.slice(1)), 1 + Math.floor(rnd() * 2));
      hosts.push(h);
      await both((s) => s.heartbeat(h, 3_600_000));
    }
  }
  return undefined;
}

t.test(`parking changes no decision (${SEEDS} seeds)`, async (t) => {
  const failures: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const why = await trial(seed);
    if (why !== undefined) failures.push(why);
  }
  t.same(failures, [], "every step of every seed decided alike");
  t.same([...parkedKinds.keys()].sort(), ["concurrency", "resource", "slots", "tags"], `pends were parked for each reason (${JSON.stringify(Object.fromEntries(parkedKinds))})`);
});
