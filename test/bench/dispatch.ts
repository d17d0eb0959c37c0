/**
 * Measure 5: one dispatch decision over 1,000 pends × 10 hosts and 10,000 × 100, with the
 * pure `decide()` in process, and the embedded commit (LocalClusterState's snapshot +
 * compare-and-set) that the hub runs around it on every pass.
 *
 * Baseline: a linear scan of the same input that any dispatcher must at least do — per
 * pend, look up its resources in `held` and its flow in `activeByFlow`. The ratio says how
 * far a decision is from that floor.
 *
 * Cluster mode: the same pass against a real redis-server started for the measure — the
 * snapshot (one Lua read), the decision, and the atomic commit (the claim script) — and the
 * commit alone, beside the decision alone (`clusterCommit` below).
 */
import { fullSnapshot } from "../helpers/state-contract.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorMessage } from "../../flows/errors.js";
import { LocalClusterState, type PendRecord } from "../../hub/cluster-state.js";
import { decide, type DispatchInput, type HostView } from "../../hub/dispatch.js";
import { openRedis } from "../../store/redis-connect.js";
import type { RedisClusterState } from "../../store/redis-state.js";
import { mulberry32Floats } from "../helpers/mulberry32.js";
import { startRedis, type Broker } from "../helpers/servers.js";
import { optionalRatio, ratioOf, summarize, type BenchOptions, type Figure, type Summary } from "./stats.js";

const HOST_TAG_SETS: readonly (readonly string[])[] = [["linux"], ["linux", "gpu"], ["linux", "ssd"], ["linux", "arm"], ["linux", "gpu", "ssd"]];
const PEND_TAG_SETS: readonly (readonly string[])[] = [[], [], ["linux"], ["linux"], ["gpu"], ["ssd"], ["arm"], ["linux", "gpu"], ["windows"]];

/**
 * A busy cluster: fewer free slots than pends (most pends wait, the realistic case for a
 * long list), a mix of host tags (some no host has), a resource on a third of the pends
 * (some held), a concurrency limit on a fifth of the flows.
 */
export function makeInput(pends: number, hosts: number, seed = 42): { input: DispatchInput; records: PendRecord[]; hostViews: HostView[] } {
  const r = mulberry32Floats(seed); // every run decides over the same input
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const hostViews: HostView[] = [];
  for (let i = 0; i < hosts; i++) hostViews.push({ name: `h${i}`, tags: pick(HOST_TAG_SETS), freeSlots: i % 3 });
  const flows = Math.max(10, Math.floor(pends / 100));
  const resources = Math.max(5, Math.floor(pends / 20));
  const records: PendRecord[] = [];
  for (let i = 0; i < pends; i++) {
    const flow = Math.floor(r() * flows);
    records.push({
      run: `01JD${String(i).padStart(22, "0")}`,
      record: "",
      flowKey: `flow-${flow}/1`,
      hostTags: pick(PEND_TAG_SETS),
      resources: r() < 0.33 ? [`res-${Math.floor(r() * resources)}`] : [],
      ...(flow % 5 === 0 ? { concurrency: 2 } : {}),
      adoptedBy: "h0",
      adoptedAt: 1_700_000_000_000 + i,
    });
  }
  const held = new Map<string, string>();
  for (let i = 0; i < resources; i += 4) held.set(`res-${i}`, `active-${i}`);
  const activeByFlow = new Map<string, number>();
  for (let f = 0; f < flows; f += 3) activeByFlow.set(`flow-${f}/1`, 1);
  return { input: { pends: records, hosts: hostViews, held, activeByFlow }, records, hostViews };
}

/** The floor: one look at each pend's resources and flow, nothing else. */
function linearScan(input: DispatchInput): number {
  let blocked = 0;
  for (const p of input.pends) {
    for (const res of p.resources) if (input.held.has(res)) blocked++;
    if ((input.activeByFlow.get(p.flowKey) ?? 0) > 0) blocked++;
  }
  return blocked;
}

/**
 * Calls before timing: a hub decides on every adoption, so what counts is the decision once
 * V8 has optimised it. Measured: the first ≈ 130 calls over 1,000 pends take 0.8–1.4 ms
 * (interpreted and baseline code), later ones 0.12–0.26 ms; five warm-up calls left those
 * in the samples, where they were most of the p99.
 */
const WARM_UP = { calls: 200, ms: 300 };

/** Runs `f` repeatedly (after a warm-up) and returns one duration per call, in ms. */
function time(f: () => unknown, iterations: number, budgetMs: number): number[] {
  for (let i = 0, stop = performance.now() + WARM_UP.ms; i < WARM_UP.calls && performance.now() < stop; i++) f();
  const out: number[] = [];
  const stop = performance.now() + budgetMs;
  for (let i = 0; i < iterations && performance.now() < stop; i++) {
    const t0 = performance.now();
    f();
    out.push(performance.now() - t0);
  }
  return out;
}

async function timeAsync(f: () => Promise<unknown>, iterations: number, budgetMs: number): Promise<number[]> {
  for (let i = 0, stop = performance.now() + WARM_UP.ms; i < WARM_UP.calls && performance.now() < stop; i++) await f();
  const out: number[] = [];
  const stop = performance.now() + budgetMs;
  for (let i = 0; i < iterations && performance.now() < stop; i++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * One embedded dispatch pass as the hub runs it (hub.ts dispatchOnce): snapshot, decide,
 * commit. The state is rebuilt before each pass (not timed) so every pass commits the
 * same decision against the same list.
 */
async function embeddedPass(records: readonly PendRecord[], hosts: readonly HostView[], iterations: number, budgetMs: number): Promise<number[]> {
  const out: number[] = [];
  const stop = performance.now() + budgetMs;
  for (let i = 0; i < iterations + 2 && performance.now() < stop; i++) {
    const state = new LocalClusterState();
    for (const h of hosts) await state.heartbeat({ name: h.name, tags: h.tags, slots: h.freeSlots, running: 0, lastSeen: 0, startedAt: 0 }, 60_000);
    for (const p of records) await state.addPend(p);
    const t0 = performance.now();
    const snap = await fullSnapshot(state);
    if (snap === undefined) throw new Error("a first snapshot is never unchanged");
    const d = decide({ pends: snap.pends, hosts: snap.hosts.map((h) => ({ name: h.name, tags: h.tags, freeSlots: h.slots - (snap.runningByHost.get(h.name) ?? 0) })), held: snap.held, activeByFlow: snap.activeByFlow });
    const byRun = new Map(snap.pends.map((p) => [p.run, p]));
    const assignments = d.assign.map((a) => {
      const p = byRun.get(a.run) as PendRecord;
      return { run: a.run, host: a.host, flowKey: p.flowKey, resources: p.resources };
    });
    const claimed = await state.claim(assignments);
    if (claimed.length !== assignments.length) throw new Error("bench: a claim was refused on a private state");
    const ms = performance.now() - t0;
    if (i >= 2) out.push(ms); // the first passes warm the JIT
  }
  return out;
}

/**
 * Cluster mode: the same pass with the snapshot read from and the commit made against a
 * real redis-server (its own, append-only with the default fsync every second). The list
 * is rebuilt before each pass (not timed), as in the embedded pass.
 */
async function clusterPasses(state: RedisClusterState, records: readonly PendRecord[], hosts: readonly HostView[], iterations: number, budgetMs: number): Promise<{ pass: number[]; commit: number[]; snapshot: number[]; claimed: number }> {
  const pass: number[] = [];
  const commit: number[] = [];
  const snapshot: number[] = [];
  let claimed = 0;
  const stop = performance.now() + budgetMs;
  for (let i = 0; i < iterations + 1 && performance.now() < stop; i++) {
    await state.redis.flushdb();
    await Promise.all(hosts.map((h) => state.heartbeat({ name: h.name, tags: h.tags, slots: h.freeSlots, running: 0, lastSeen: 0, startedAt: 0 }, 600_000)));
    // One connection, so the pends arrive in this order: the adoption order.
    await Promise.all(records.map((p) => state.addPend(p)));
    const t0 = performance.now();
    const snap = await fullSnapshot(state);
    const t1 = performance.now();
    const d = decide({ pends: snap.pends, hosts: snap.hosts.map((h) => ({ name: h.name, tags: h.tags, freeSlots: h.slots - (snap.runningByHost.get(h.name) ?? 0) })), held: snap.held, activeByFlow: snap.activeByFlow });
    const byRun = new Map(snap.pends.map((p) => [p.run, p]));
    const assignments = d.assign.map((a) => {
      const p = byRun.get(a.run) as PendRecord;
      return { run: a.run, host: a.host, flowKey: p.flowKey, resources: p.resources };
    });
    const t2 = performance.now();
    const got = await state.claim(assignments);
    const t3 = performance.now();
    if (got.length !== assignments.length) throw new Error(`bench: Redis refused ${assignments.length - got.length} of ${assignments.length} claims on a private state`);
    claimed = got.length;
    if (i === 0) continue; // the first pass loads the scripts
    pass.push(t3 - t0);
    commit.push(t3 - t2);
    snapshot.push(t1 - t0);
  }
  return { pass, commit, snapshot, claimed };
}

function clusterFigures(size: { pends: number; hosts: number }, label: string, r: Awaited<ReturnType<typeof clusterPasses>>, decideDist: Summary, embedded: Summary): Figure[] {
  const commit = summarize(r.commit);
  const pass = summarize(r.pass);
  const snap = summarize(r.snapshot);
  return [
    {
      id: `dispatch.commit.redis.${size.pends}x${size.hosts}`,
      what: `Redis atomic commit (claim script), ${label}`,
      unit: "ms",
      dist: commit,
      baseline: { what: "decide() alone", dist: decideDist },
      ...optionalRatio(ratioOf({ dist: commit }, { dist: decideDist })),
      clock: "bench process, performance.now() around claim(), one round trip to a local redis-server",
      note: `${r.claimed} runs claimed per commit; snapshot alone p50 ${snap.p50.toFixed(2)} ms, p99 ${snap.p99.toFixed(2)} ms`,
    },
    {
      id: `dispatch.pass.redis.${size.pends}x${size.hosts}`,
      what: `Redis pass (snapshot+decide+commit), ${label}`,
      unit: "ms",
      dist: pass,
      baseline: { what: "embedded pass", dist: embedded },
      ...optionalRatio(ratioOf({ dist: pass }, { dist: embedded })),
      clock: "bench process, performance.now()",
    },
  ];
}

/** A redis-server of the measure's own, stopped (and its data removed) by `close`. */
async function benchRedis(): Promise<{ state: RedisClusterState; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "floe-bench-redis-"));
  let broker: Broker | undefined;
  try {
    broker = await startRedis(dir, ["--appendfsync", "everysec"]);
    const state = await openRedis(broker.url, { cluster: "bench", commandTimeoutMs: 30_000 });
    const b = broker;
    return {
      state,
      async close() {
        await state.close();
        await b.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

export async function benchDispatch(o: BenchOptions): Promise<Figure[]> {
  const sizes = [
    { pends: 1_000, hosts: 10, iterations: o.quick ? 50 : 500, budgetMs: o.quick ? 500 : 3_000 },
    { pends: 10_000, hosts: 100, iterations: o.quick ? 5 : 40, budgetMs: o.quick ? 1_500 : 10_000 },
  ];
  const figures: Figure[] = [];
  let redis: Awaited<ReturnType<typeof benchRedis>> | undefined;
  try {
    redis = await benchRedis();
  } catch (e) {
    o.progress(`dispatch: no Redis figures (${errorMessage(e)})`);
  }
  try {
    for (const s of sizes) figures.push(...(await benchSize(o, s, redis?.state)));
  } finally {
    await redis?.close();
  }
  return figures;
}

async function benchSize(o: BenchOptions, s: { pends: number; hosts: number; iterations: number; budgetMs: number }, redis: RedisClusterState | undefined): Promise<Figure[]> {
  const figures: Figure[] = [];
  const label = `${s.pends.toLocaleString("en")} pends × ${s.hosts} hosts`;
  o.progress(`dispatch: ${label}`);
  const { input, records, hostViews } = makeInput(s.pends, s.hosts);
  const sample = decide(input);
  const base = summarize(time(() => linearScan(input), s.iterations * 4, s.budgetMs / 4));
  const dist = summarize(time(() => decide(input), s.iterations, s.budgetMs));
  figures.push({
    id: `dispatch.decide.${s.pends}x${s.hosts}`,
    what: `decide(), ${label}`,
    unit: "ms",
    dist,
    baseline: { what: "linear scan of the same pends", dist: base },
    ...optionalRatio(ratioOf({ dist }, { dist: base })),
    clock: "bench process, performance.now() around the call",
    note: `${sample.assign.length} assigned, ${sample.waiting.size} waiting`,
  });
  const pass = summarize(await embeddedPass(records, hostViews, Math.max(5, Math.floor(s.iterations / 2)), s.budgetMs));
  figures.push({
    id: `dispatch.pass.${s.pends}x${s.hosts}`,
    what: `embedded pass (snapshot+decide+commit), ${label}`,
    unit: "ms",
    dist: pass,
    baseline: { what: "decide() alone", dist },
    ...optionalRatio(ratioOf({ dist: pass }, { dist })),
    clock: "bench process, performance.now()",
  });
  if (redis !== undefined) {
    o.progress(`dispatch: ${label} against Redis`);
    const r = await clusterPasses(redis, records, hostViews, Math.max(5, Math.floor(s.iterations / 2)), s.budgetMs);
    figures.push(...clusterFigures(s, label, r, dist, pass));
  }
  return figures;
}
