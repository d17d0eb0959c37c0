/**
 * The invariants a chaos run must keep, each checked from evidence that floe did not write
 * itself where possible (the tasks' evidence file, /proc, Redis keys, the files on disk):
 * each returns what it checked and every violation found.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { redisKeys } from "../../store/redis-keys.js";
import type { Execution } from "./evidence.js";
import type { FaultRecord } from "./faults.js";
import type { HostSpec } from "../helpers/cluster.js";
import { flowSpec } from "./workload.js";

export interface Check {
  readonly name: string;
  readonly checked: number;
  readonly violations: string[];
}

export interface RunView {
  readonly ref: { readonly run: string; readonly flow: string; readonly execHost?: string };
  readonly state: string;
  readonly result?: string;
  readonly reason?: string;
  readonly attempt: number;
  readonly trigger?: { readonly values?: Readonly<Record<string, unknown>> };
}

const TERMINAL = new Set(["good", "bad", "cancelled", "lost"]);

/**
 * Every run ended exactly once: archived with a terminal result, and every live host tells
 * the same end (result, attempt, executing host); each run listed once in the run index.
 */
export function endedOnce(runs: ReadonlyMap<string, ReadonlyMap<string, RunView | string>>, listed: readonly string[]): Check {
  const v: string[] = [];
  for (const [run, views] of runs) {
    const seen = new Set<string>();
    for (const [host, view] of views) {
      if (typeof view === "string") {
        v.push(`run ${run}: host ${host} could not show it: ${view}`);
        continue;
      }
      if (view.state !== "archived" || view.result === undefined || !TERMINAL.has(view.result)) v.push(`run ${run} (${view.ref.flow}): on ${host} ${view.state} ${view.result ?? "without result"}`);
      seen.add(`${view.state}/${view.result ?? "-"}/attempt ${view.attempt}/on ${view.ref.execHost ?? "-"}`);
    }
    if (seen.size > 1) v.push(`run ${run}: hosts disagree on its end: ${[...seen].join(" | ")}`);
  }
  const counts = new Map<string, number>();
  for (const r of listed) counts.set(r, (counts.get(r) ?? 0) + 1);
  for (const [r, n] of counts) if (n > 1) v.push(`run ${r} listed ${n} times in the run index`);
  return { name: "every run ended exactly once with a terminal result (all hosts agree)", checked: runs.size, violations: v };
}

/** A run's final attempt number agrees with the attempts its tasks saw; `fail` flows never requeue. */
export function attemptsLinked(runs: ReadonlyMap<string, RunView>, execs: readonly Execution[]): Check {
  const v: string[] = [];
  const byRun = new Map<string, Execution[]>();
  for (const e of execs) byRun.set(e.run, [...(byRun.get(e.run) ?? []), e]);
  for (const [run, view] of runs) {
    const mine = byRun.get(run) ?? [];
    const max = Math.max(0, ...mine.map((e) => e.attempt));
    if (max > view.attempt) v.push(`run ${run} (${view.ref.flow}): a task ran as attempt ${max} but the run says attempt ${view.attempt}`);
    if (mine.some((e) => e.attempt < 1)) v.push(`run ${run}: a task ran with attempt < 1`);
    if (view.result === "good" && mine.length > 0 && !mine.some((e) => e.attempt === view.attempt)) v.push(`run ${run} (${view.ref.flow}): ended good as attempt ${view.attempt}, but no task of that attempt ran`);
    const spec = flowSpec(view.ref.flow);
    if (spec?.onHostLoss === "fail" && view.attempt !== 1) v.push(`run ${run} (${view.ref.flow}, on-host-loss: fail) has attempt ${view.attempt}`);
    if (spec?.onHostLoss === "requeue" && view.result === "lost") v.push(`run ${run} (${view.ref.flow}, on-host-loss: requeue) ended lost: ${view.reason ?? ""}`);
  }
  for (const run of byRun.keys()) if (!runs.has(run)) v.push(`tasks ran for run ${run}, which the cluster does not know`);
  return { name: "attempts linked (evidence attempt ≤ run attempt; good runs ran their last attempt; fail flows never requeued, requeue flows never lost)", checked: runs.size, violations: v };
}

/**
 * No two runs holding the same resource tag had tasks running at the same time. A task's
 * interval runs from its start line to its end line; for a host killed (or frozen) while the
 * task ran, only up to that instant: from then on the cluster may rightly hand the lock to
 * another run after the lease, while the orphan lives on until its host restarts (checked
 * by `orphansKilledOnRestart`). A task with no end line and no fault to explain it is a
 * violation of its own.
 */
/** Partitions that cut a host from Redis: it must stand down (kill its tasks) within its lease. */
const REDIS_CUTS: readonly string[] = ["redis-cut", "both-cut", "oneway-cut"];

/** The lease's margin for a lease of `leaseMs` (hub/lease.ts: a quarter, 100 ms … 10 s). */
function marginMs(leaseMs: number): number {
  return Math.min(10_000, Math.max(100, leaseMs / 4));
}

/** A host's own word that it killed a run's tasks when it stood down (its log), wall clock ns. */
export interface StandDownKill {
  readonly host: string;
  readonly run: string;
  readonly atNs: bigint;
}

/**
 * What the hosts' logs say of stand-downs: `run stood down: its tasks were killed`, logged as
 * the SIGKILL of the run's process groups is sent (through the spawn helper).
 */
export function standDownKills(host: string, log: string): StandDownKill[] {
  const out: StandDownKill[] = [];
  for (const line of log.split("\n")) {
    if (!line.includes("run stood down: its tasks were killed")) continue;
    try {
      const o: unknown = JSON.parse(line);
      if (typeof o !== "object" || o === null || !("run" in o) || !("time" in o) || typeof o.run !== "string" || typeof o.time !== "string") continue;
      const ms = Date.parse(o.time);
      if (Number.isFinite(ms)) out.push({ host, run: o.run, atNs: BigInt(ms) * 1_000_000n });
    } catch {
      // not a JSON line
    }
  }
  return out;
}

/** How long a stand-down's SIGKILL may take to reach a task after the host logged it (IPC to the spawn helper). */
const KILL_SLACK_NS = 500_000_000n;

export function resourcesExclusive(execs: readonly Execution[], faults: readonly FaultRecord[], leaseMs = 2000, killed: readonly StandDownKill[] = []): Check {
  const v: string[] = [];
  const cuts = faults.filter((f) => f.kind === "host-kill" || f.kind === "host-freeze");
  // A task its host killed when it stood down leaves no end line: it was dead by then, at the
  // latest (the last renewal was sent before the cut; it vouched for lease − margin).
  const standDownNs = BigInt(Math.round((leaseMs - marginMs(leaseMs)) * 1e6));
  // Faults that take Redis from a host (a restart of Redis takes it from every host).
  const redisCuts = faults.filter((f) => REDIS_CUTS.includes(f.kind) || f.kind === "lossy-redis" || f.kind === "redis-restart");
  type Span = { e: Execution; from: bigint; to: bigint };
  const byRes = new Map<string, Span[]>();
  let checked = 0;
  for (const e of execs) {
    const res = flowSpec(e.flow)?.resources ?? [];
    if (res.length === 0) continue;
    checked++;
    let to = e.endNs;
    for (const f of cuts) {
      if (f.target === e.host && f.atNs >= e.startNs && (to === undefined || f.atNs < to)) to = f.atNs;
    }
    if (e.endNs === undefined) {
      // Its host stood down within lease − margin of the fault: a task running then, or
      // started during the outage while the last renewal still vouched, was killed by then.
      for (const f of redisCuts) {
        const by = f.atNs + standDownNs;
        const hit = f.kind === "redis-restart" || f.target === e.host;
        if (hit && e.startNs <= by && (to === undefined || by < to)) to = by;
      }
      // On a slow, lossy link a host stands down and vouches again by turns: a task started
      // in a vouched moment dies at a later stand-down, which its host logged.
      for (const k of killed) {
        const by = k.atNs + KILL_SLACK_NS;
        if (k.host === e.host && k.run === e.run && k.atNs >= e.startNs && (to === undefined || by < to)) to = by;
      }
    }
    if (to === undefined) {
      v.push(`task ${e.node} of run ${e.run} on ${e.host} (pid ${e.pid}) left no end line and no fault explains it`);
      continue;
    }
    for (const r of res) byRes.set(r, [...(byRes.get(r) ?? []), { e, from: e.startNs, to }]);
  }
  for (const [res, spans] of byRes) {
    spans.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
    for (let i = 0; i < spans.length; i++) {
      const a = spans[i] as Span;
      for (let j = i + 1; j < spans.length; j++) {
        const b = spans[j] as Span;
        if (b.from >= a.to) continue;
        if (a.e.run === b.e.run) continue;
        v.push(`resource ${res}: run ${a.e.run} (${a.e.flow}.${a.e.node} on ${a.e.host}) and run ${b.e.run} (${b.e.flow}.${b.e.node} on ${b.e.host}) overlapped ${Number(a.to - b.from) / 1e6} ms`);
      }
    }
  }
  return { name: "no two runs sharing a resource tag overlapped", checked, violations: v };
}

/** A host cut from Redis starts no task from a lease after the cut until the link heals. */
export function standsDown(execs: readonly Execution[], faults: readonly FaultRecord[], leaseMs: number): Check {
  const v: string[] = [];
  const cuts = faults.filter((f) => REDIS_CUTS.includes(f.kind) && f.healedNs !== undefined);
  const leaseNs = BigInt(leaseMs) * 1_000_000n;
  for (const f of cuts) {
    for (const e of execs) {
      if (e.host === f.target && e.startNs > f.atNs + leaseNs && e.startNs < (f.healedNs as bigint)) {
        v.push(`${f.target}, cut from Redis (${f.kind}) at ${f.atNs}, started ${e.flow}.${e.node} of run ${e.run} ${Number(e.startNs - f.atNs) / 1e6} ms later, before the link healed`);
      }
    }
  }
  return { name: "a host cut from Redis starts no task once its lease is over", checked: cuts.length, violations: v };
}

/** The tasks a host was running die with it (its spawn helper kills them when it goes). */
export function tasksDieWithHost(faults: readonly FaultRecord[]): Check {
  const kills = faults.filter((f) => f.kind === "host-kill" && f.survivors !== undefined);
  const v = kills.filter((f) => (f.survivors ?? []).length > 0).map((f) => `${(f.survivors ?? []).length} task process(es) of ${f.target} still alive 5 s after its kill -9: ${(f.survivors ?? []).join(", ")}`);
  return { name: "a killed host's tasks die with it", checked: kills.length, violations: v };
}

/** Orphans of a killed host die when it restarts: none writes its end after the host serves again. */
export function orphansKilledOnRestart(execs: readonly Execution[], faults: readonly FaultRecord[]): Check {
  const v: string[] = [];
  let checked = 0;
  for (const f of faults) {
    if (f.kind !== "host-kill" || f.healedNs === undefined) continue;
    const healed = f.healedNs;
    for (const e of execs) {
      if (e.host !== f.target || e.startNs > f.atNs || (e.endNs !== undefined && e.endNs <= f.atNs)) continue;
      checked++;
      // A second of grace: "serving" is printed as recovery ends; SIGKILL lands at once.
      if (e.endNs !== undefined && e.endNs > healed + 1_000_000_000n) v.push(`orphan ${e.node} of run ${e.run} (pid ${e.pid}) outlived the restart of ${e.host} by ${Number(e.endNs - healed) / 1e6} ms`);
    }
  }
  return { name: "orphans of a killed host are killed when it restarts", checked, violations: v };
}

/** `fail` flows: no task ran twice. Every task ran on a host with the flow's host-tags. */
export function placement(execs: readonly Execution[], hosts: readonly HostSpec[]): Check[] {
  const twice: string[] = [];
  const seen = new Map<string, number>();
  let failChecked = 0;
  for (const e of execs) {
    if (flowSpec(e.flow)?.onHostLoss !== "fail") continue;
    failChecked++;
    const k = `${e.run} ${e.node}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  for (const [k, n] of seen) if (n > 1) twice.push(`task ${k.split(" ")[1]} of run ${k.split(" ")[0]} ran ${n} times`);
  const wrong: string[] = [];
  for (const e of execs) {
    const want = flowSpec(e.flow)?.hostTags ?? [];
    const has = hosts.find((h) => h.name === e.host)?.tags ?? [];
    const missing = want.filter((t) => !has.includes(t));
    if (missing.length > 0) wrong.push(`task ${e.node} of run ${e.run} (${e.flow}) ran on ${e.host}, which lacks ${missing.join(", ")}`);
  }
  return [
    { name: "no task of an on-host-loss: fail flow ran twice", checked: failChecked, violations: twice },
    { name: "no task ran on a host lacking the flow's host-tags", checked: execs.length, violations: wrong },
  ];
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const d of entries) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

/**
 * Every store file parses: run.json whole; a run's journal (and the node-*.json of the old
 * layout) as JSON lines, only a torn last line (no newline after it) tolerated. No run is left in a pending/ or active/ directory.
 */
export async function storeFiles(roots: readonly string[]): Promise<Check> {
  const v: string[] = [];
  let checked = 0;
  for (const root of roots) {
    for (const path of await walk(join(root, "floes"))) {
      const name = path.slice(path.lastIndexOf("/") + 1);
      const rel = path.slice(root.length + 1);
      if (/\/(pending|active)\/[^/]+\//.test(rel)) {
        if (name === "run.json") v.push(`${rel}: a run left in ${/\/pending\//.test(rel) ? "pending" : "active"} at rest`);
      }
      if (name === "run.json") {
        checked++;
        try {
          const x: unknown = JSON.parse(await readFile(path, "utf8"));
          if (typeof x !== "object" || x === null) v.push(`${rel}: not a JSON object`);
        } catch (e) {
          v.push(`${rel}: ${String(e)}`);
        }
      } else if (name === "journal" || /^node-.*\.json$/.test(name)) {
        checked++;
        const text = await readFile(path, "utf8");
        const lines = text.split("\n");
        const torn = lines.pop() ?? "";
        lines.forEach((l, i) => {
          try {
            JSON.parse(l);
          } catch {
            v.push(`${rel}: line ${i + 1} does not parse: ${l.slice(0, 80)}`);
          }
        });
        if (torn !== "") {
          try {
            JSON.parse(torn);
            v.push(`${rel}: last line has no newline`);
          } catch {
            // a torn last line: tolerated
          }
        }
      }
    }
  }
  return { name: "every store file parses; no run left in pending/ or active/", checked, violations: v };
}

/** At rest no lock is held, no run lease (active entry, fencing token) or pend remains in Redis. */
export async function redisAtRest(url: string): Promise<Check> {
  const k = redisKeys();
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  const v: string[] = [];
  try {
    await r.connect();
    const hashes = ["held", "active", "tokens", "pendView", "pendRecord", "running", "flowActive"] as const;
    for (const h of hashes) {
      const all = await r.hgetall(k.table(h));
      const left = Object.entries(all).filter(([, val]) => (h === "running" || h === "flowActive" ? Number(val) !== 0 : true));
      for (const [field, val] of left.slice(0, 10)) v.push(`${h}: ${field} = ${val.slice(0, 120)}`);
      if (left.length > 10) v.push(`${h}: ${left.length - 10} more`);
    }
    const pends = await r.zcard(k.table("pendOrder"));
    if (pends > 0) v.push(`pendOrder: ${pends} pends`);
    const phases = Object.entries(await r.hgetall(k.table("phase"))).filter(([, p]) => p === "pending" || p === "active");
    for (const [run, p] of phases) v.push(`phase: run ${run} still ${p}`);
    for (const s of ["pending", "active"] as const) {
      const n = await r.zcard(k.indexByState(s));
      if (n > 0) v.push(`run index: ${n} runs still ${s}: ${(await r.zrange(k.indexByState(s), "0", "4")).join(", ")}`);
    }
  } finally {
    r.disconnect();
  }
  return { name: "no lock, run lease, token or pend left at rest in Redis", checked: 1, violations: v };
}

/** Processes started as chaos tasks (`FLOE_RUN_ID` and this run's marker in their environment), of one host when given. */
export async function taskProcesses(marker: string, host?: string): Promise<number[]> {
  const out: number[] = [];
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = await readFile(`/proc/${p}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const env = (await readFile(`/proc/${p}/environ`, "utf8")).split("\0");
      if (env.includes(marker) && env.some((e) => e.startsWith("FLOE_RUN_ID=")) && (host === undefined || env.includes(`FLOE_HOST=${host}`))) out.push(Number(p));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

export function orphanCheck(left: readonly number[]): Check {
  return { name: "no task process alive at rest", checked: 1, violations: left.map((p) => `pid ${p} is still alive${existsSync(`/proc/${p}/cmdline`) ? "" : " (gone since)"}`) };
}
