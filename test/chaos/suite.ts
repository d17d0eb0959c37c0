/**
 * One chaos run: brokers and three hosts, a seeded workload of runs triggered through any
 * live host while seeded faults strike, data nodes answered as they open; then every fault
 * healed, quiescence awaited, and the invariants checked. Shared by `npm run chaos`
 * (run.ts) and the small version in `npm test` (chaos.test.ts).
 */
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCluster, type OwnedCluster } from "../helpers/cluster.js";
import { mountTmpfs, unmount } from "../helpers/disk.js";
import { until } from "../helpers/hub.js";
import { ChaosClient } from "./client.js";
import { readEvidence } from "./evidence.js";
import { Faults, PARTITION_KINDS, type FaultKind, type FaultRecord, type HostLinks } from "./faults.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";
import type { HostSpec } from "../helpers/cluster.js";
import { attemptsLinked, endedOnce, orphanCheck, orphansKilledOnRestart, placement, redisAtRest, resourcesExclusive, standDownKills, standsDown, storeFiles, taskProcesses, tasksDieWithHost, type Check, type RunView } from "./invariants.js";
import { stream } from "./prng.js";
import { chaosConf, DISK_HOST, FLOWS, HOSTS, plan, type Intent } from "./workload.js";

export interface ChaosOptions {
  readonly seed: number;
  readonly runs: number;
  /** How long triggers (and faults) go on. */
  readonly windowMs: number;
  /** Pause between faults, drawn in this range. */
  readonly faultGapMs?: readonly [number, number];
  readonly leaseS?: number;
  /** A fresh directory for brokers, roots and evidence. */
  readonly dir: string;
  readonly log?: (line: string) => void;
  /** Only these fault kinds (default: every kind that can be injected here; with partitions, the partition kinds). */
  readonly faults?: readonly FaultKind[];
  /** Every host reaches Redis and NATS through fault proxies of its own, and partitions are injected. */
  readonly partitions?: boolean;
}

export interface ChaosReport {
  readonly seed: number;
  readonly runs: { triggered: number; adopted: number; uncertain: number; refusals503: number; inCluster: number; results: Record<string, number> };
  readonly faults: Record<string, number>;
  readonly faultLog: { kind: FaultKind; target: string; heldMs: number; error?: string }[];
  readonly notInjected: Record<string, string>;
  readonly executions: number;
  readonly invariants: Check[];
  readonly violations: number;
  readonly ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const began = Date.now();
  const log = o.log ?? (() => undefined);
  const leaseS = o.leaseS ?? 2;
  const marker = `FLOE_CHAOS_DIR=${o.dir}`;
  mkdirSync(join(o.dir, "counters"), { recursive: true });
  const diskRoot = join(o.dir, `root-${DISK_HOST}`);
  const asked = o.faults ?? (o.partitions === true ? PARTITION_KINDS : undefined);
  const noDisk = asked !== undefined && !asked.includes("disk-full") ? "not asked for" : mountTmpfs(diskRoot, 48);
  let cluster: OwnedCluster | undefined;
  const proxies: { close(): Promise<void> }[] = [];
  try {
    cluster = await createCluster(o.dir, { conf: chaosConf(o.dir), leaseS, env: { FLOE_CHAOS_DIR: o.dir } });
    const c = cluster;
    // With partitions, each host's way to each broker is a proxy of its own, kept across its restarts.
    let hosts: readonly HostSpec[] = HOSTS;
    let links: Map<string, HostLinks> | undefined;
    if (o.partitions === true) {
      links = new Map();
      const specs: HostSpec[] = [];
      for (const h of HOSTS) {
        const l = { redis: await startFaultProxy(c.redis.port), nats: await startFaultProxy(c.nats.port) };
        proxies.push(l.redis, l.nats);
        links.set(h.name, l);
        specs.push({ ...h, redisUrl: l.redis.url("redis"), natsUrl: l.nats.url("nats") });
      }
      hosts = specs;
    }
    for (const h of hosts) await c.start(h);
    await c.settle(HOSTS.map((h) => h.name));
    const client = new ChaosClient(c, stream(o.seed, "routing"));
    const faults = new Faults({ cluster: c, client, hosts, leaseS, ...(noDisk === undefined ? { disk: { host: DISK_HOST, root: diskRoot } } : {}), log, tasksOf: (host) => taskProcesses(marker, host), ...(links !== undefined ? { links } : {}) });
    if (noDisk !== undefined) faults.skipped.set("disk-full", `not injected: ${noDisk}`);
    if (asked !== undefined) for (const k of faults.kinds()) if (!asked.includes(k)) faults.skipped.set(k, "not asked for");

    const intents = plan(stream(o.seed, "workload"), o.runs, o.windowMs);
    const adopted = new Map<string, Intent>();
    let uncertain = 0;
    let refusals = 0;
    let triggering = true;
    let quiet = false;

    // Triggers: each at its planned moment (or as soon as the one before got an answer).
    const trigger = async () => {
      const t0 = Date.now();
      for (const it of intents) {
        const wait = t0 + it.atMs - Date.now();
        if (wait > 0) await sleep(wait);
        const deadline = Date.now() + 120_000;
        for (;;) {
          const [host] = client.live();
          if (host !== undefined) {
            try {
              const a = await ChaosClient.once(host[1], host[0], "POST", `/flows/${it.flow}/runs`, { values: it.values });
              if (a.status === 201) {
                adopted.set((a.body as { run: { ref: { run: string } } }).run.ref.run, it);
                break;
              }
              if (a.status === 503) refusals++;
              else if (a.status < 500) throw new Error(`trigger ${it.flow} refused: ${a.status} ${JSON.stringify(a.body)}`);
            } catch (e) {
              if (e instanceof Error && e.message.startsWith("trigger ")) throw e;
              // No answer: the run may or may not have been adopted. Not retried (that could
              // start it twice); the cluster's own list shows whether it exists.
              uncertain++;
              break;
            }
          }
          if (Date.now() > deadline) throw new Error(`trigger ${it.key} (${it.flow}): no host adopted it in 120 s`);
          await sleep(200);
        }
      }
    };

    // Data nodes: answered wherever they wait, through any host.
    const answer = async () => {
      const asks = FLOWS.filter((f) => f.dataNodes.length > 0);
      while (!quiet) {
        for (const f of asks) {
          try {
            const list = await client.ask("GET", `/runs?flow=${f.id}&state=active&limit=1000`, undefined, 5_000);
            for (const r of (list.body as { runs?: RunView[] }).runs ?? []) {
              const d = await client.ask("GET", `/runs/${r.ref.run}`, undefined, 5_000);
              const nodes = (d.body as { nodes?: { id: string; enabled?: boolean }[] }).nodes ?? [];
              for (const n of nodes) if (f.dataNodes.includes(n.id) && n.enabled === true) await client.ask("POST", `/runs/${r.ref.run}/nodes/${n.id}/data`, { values: { note: "chaos" } }, 5_000);
            }
          } catch {
            // a fault in the way: next round
          }
        }
        await sleep(300);
      }
    };

    log(`workload: ${intents.length} runs over ${Math.round(o.windowMs / 1000)} s; faults: ${faults.kinds().join(", ") || "none"}`);
    const answering = answer();
    const faulting = faults.schedule(stream(o.seed, "faults"), () => !triggering, o.faultGapMs ?? [2_000, 6_000]);
    try {
      await trigger();
    } finally {
      triggering = false;
      await faulting;
      await faults.healAll();
    }
    log(`triggered ${adopted.size} (+${uncertain} uncertain); faults: ${JSON.stringify(faults.counts())}; waiting for quiescence`);
    await c.settle(HOSTS.map((h) => h.name)).catch((e: unknown) => log(`settle: ${String(e)}`));

    // Quiescence: every adopted run archived, nothing pending or active anywhere.
    const open = async (): Promise<number> => {
      let n = 0;
      for (const s of ["pending", "active"]) n += ((await client.ask("GET", `/runs?state=${s}&limit=1000`)).body as { runs?: unknown[] }).runs?.length ?? 1;
      return n;
    };
    let quiescence: string | undefined;
    try {
      await until(async () => (await open()) === 0, 90_000, "no run pending or active");
      const ids = [...adopted.keys()];
      await until(async () => {
        for (const id of ids) if (((await client.ask("GET", `/runs/${id}`)).body as RunView).state !== "archived") return false;
        return true;
      }, 60_000, "every adopted run archived");
    } catch (e) {
      quiescence = String(e);
    }
    quiet = true;
    await answering;

    // The runs: adopted ones, and any the cluster lists (an uncertain trigger may have made one).
    const listed = ((await client.ask("GET", "/runs?limit=1000")).body as { runs?: RunView[] }).runs ?? [];
    const ids = new Set([...adopted.keys(), ...listed.map((r) => r.ref.run)]);
    const views = new Map<string, Map<string, RunView | string>>();
    const final = new Map<string, RunView>();
    for (const id of ids) {
      const per = new Map<string, RunView | string>();
      for (const [name, p] of c.hosts) {
        try {
          const a = await ChaosClient.once(p, name, "GET", `/runs/${id}`);
          if (a.status === 200) {
            per.set(name, a.body as RunView);
            final.set(id, a.body as RunView);
          } else per.set(name, `${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
        } catch (e) {
          per.set(name, String(e));
        }
      }
      views.set(id, per);
    }
    const results: Record<string, number> = {};
    for (const v of final.values()) results[v.result ?? v.state] = (results[v.result ?? v.state] ?? 0) + 1;

    const ev = readEvidence(join(o.dir, "evidence.log"));
    const invariants: Check[] = [];
    invariants.push({ name: "quiescence reached (all triggered runs archived)", checked: 1, violations: quiescence === undefined ? [] : [quiescence] });
    invariants.push(endedOnce(views, listed.map((r) => r.ref.run)));
    invariants.push(attemptsLinked(final, ev.executions));
    const killed = (cluster?.started() ?? []).flatMap((s) => standDownKills(s.name, s.p.output()));
    invariants.push(resourcesExclusive(ev.executions, faults.records, leaseS * 1000, killed));
    if (o.partitions === true) invariants.push(standsDown(ev.executions, faults.records, leaseS * 1000));
    invariants.push(tasksDieWithHost(faults.records));
    invariants.push(orphansKilledOnRestart(ev.executions, faults.records));
    invariants.push(...placement(ev.executions, HOSTS));
    invariants.push({ name: "evidence lines well-formed", checked: ev.executions.length, violations: ev.bad.map((l) => `bad evidence line: ${l}`) });
    invariants.push(await redisAtRest(c.redis.url));
    // Runs are archived, so no task may be alive; a moment for SIGKILLed groups to vanish.
    let left: number[] = [];
    await until(async () => (left = await taskProcesses(marker)).length === 0, 10_000, "task processes to exit").catch(() => undefined);
    invariants.push(orphanCheck(left));
    // Store files once the hosts are stopped (nothing writes any more).
    await Promise.allSettled([...c.hosts.values()].map((h) => h.stop()));
    invariants.push(await storeFiles(HOSTS.map((h) => join(o.dir, `root-${h.name}`))));
    for (const p of await taskProcesses(marker)) process.kill(p, "SIGKILL");

    const report: ChaosReport = {
      seed: o.seed,
      runs: { triggered: intents.length, adopted: adopted.size, uncertain, refusals503: refusals, inCluster: ids.size, results },
      faults: faults.counts(),
      faultLog: faults.records.map((r: FaultRecord) => ({ kind: r.kind, target: r.target, heldMs: r.heldMs, ...(r.error !== undefined ? { error: r.error } : {}) })),
      notInjected: Object.fromEntries(faults.skipped),
      executions: ev.executions.length,
      invariants,
      violations: invariants.reduce((n, i) => n + i.violations.length, 0),
      ms: Date.now() - began,
    };
    writeFileSync(join(o.dir, "report.json"), JSON.stringify(report, null, 2));
    return report;
  } finally {
    await cluster?.close();
    await Promise.allSettled(proxies.map((p) => p.close()));
    // For a post-mortem: every host's output, and the tmpfs root's files before they go.
    for (const [i, s] of (cluster?.started() ?? []).entries()) writeFileSync(join(o.dir, `host-${s.name}-${i}.log`), s.p.output());
    if (noDisk === undefined) {
      try {
        cpSync(diskRoot, `${diskRoot}.copy`, { recursive: true });
      } catch {
        // nothing to keep
      }
      unmount(diskRoot);
    }
  }
}

/** The report as lines for a console. */
export function formatReport(r: ChaosReport): string[] {
  const out = [
    `seed ${r.seed}: ${r.runs.triggered} runs triggered, ${r.runs.adopted} adopted (+${r.runs.uncertain} with no answer, ${r.runs.refusals503} 503 refusals retried), ${r.runs.inCluster} runs in the cluster, ${r.executions} task executions`,
    `results: ${Object.entries(r.runs.results).map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `faults: ${Object.entries(r.faults).map(([k, n]) => `${k} ${n}`).join(", ")}`,
    ...Object.entries(r.notInjected).map(([k, why]) => `  ${k}: ${why}`),
    ...r.faultLog.filter((f) => f.error !== undefined).map((f) => `  fault ${f.kind} ${f.target} FAILED: ${f.error ?? ""}`),
    "invariants:",
  ];
  for (const i of r.invariants) {
    out.push(`  ${i.violations.length === 0 ? "ok  " : "FAIL"} ${i.name} (${i.checked} checked, ${i.violations.length} violations)`);
    for (const v of i.violations.slice(0, 15)) out.push(`       ${v}`);
    if (i.violations.length > 15) out.push(`       … ${i.violations.length - 15} more`);
  }
  out.push(`${r.violations === 0 ? "PASS" : "FAIL"}: ${r.violations} violations in ${(r.ms / 1000).toFixed(0)} s`);
  return out;
}
