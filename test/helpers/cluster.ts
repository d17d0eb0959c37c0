/**
 * A real cluster for tests: its own nats-server and redis-server on free ports, and
 * `floe serve` processes joined to them, each with its own root. Hosts can be killed with
 * -9, stopped with SIGSTOP and restarted; brokers can be restarted.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Test } from "tap";
import { startFloe, type FloeProcess } from "./floe-process.js";
import { until } from "./hub.js";
import { startNats, startNatsCluster, startRedis, type Broker } from "./servers.js";

export interface HostSpec {
  readonly name: string;
  readonly tags?: readonly string[];
  readonly slots?: number;
  /** The host's way to Redis, when not straight to the cluster's (a fault proxy). */
  readonly redisUrl?: string;
  /** The host's way to NATS, likewise. */
  readonly natsUrl?: string;
  /** More environment for this host's process (e.g. libfaketime's, to step its wall clock). */
  readonly env?: Record<string, string>;
}

export interface Cluster {
  /** The first NATS server (the only one unless `natsNodes` > 1). */
  readonly nats: Broker;
  /** Every NATS server of the cluster. */
  readonly natsNodes: readonly Broker[];
  readonly redis: Broker;
  readonly dir: string;
  readonly conf: string;
  /** The live process of each host started (and not killed). */
  readonly hosts: Map<string, FloeProcess>;
  start(spec: HostSpec): Promise<FloeProcess>;
  host(name: string): FloeProcess;
  kill9(name: string): Promise<void>;
  /** Waits until every host in `names` sees all of them up in GET /hosts. */
  settle(names: readonly string[]): Promise<void>;
}

export interface ClusterOptions {
  /** The flows file text. */
  readonly conf: string;
  readonly leaseS?: number;
  readonly env?: Record<string, string>;
  /** NATS servers joined in one NATS cluster; hosts get all their URLs. @defaultValue 1 */
  readonly natsNodes?: number;
  /** More `floe serve` flags for every host. */
  readonly hostArgs?: readonly string[];
}

export interface OwnedCluster extends Cluster {
  /** Every host process ever started, killed ones too (for their output). */
  started(): readonly { readonly name: string; readonly p: FloeProcess }[];
  /** kill -9 of every host ever started, then the brokers. */
  close(): Promise<void>;
}

/** A cluster in `dir`, not tied to a tap test (the chaos runner uses it standalone). */
export async function createCluster(dir: string, o: ClusterOptions): Promise<OwnedCluster> {
  const natsNodes = (o.natsNodes ?? 1) > 1 ? await startNatsCluster(dir, o.natsNodes) : [await startNats(dir)];
  const nats = natsNodes[0] as Broker;
  const natsUrls = natsNodes.map((b) => b.url).join(",");
  const redis = await startRedis(dir);
  const conf = join(dir, "flows.yml");
  writeFileSync(conf, o.conf);
  const hosts = new Map<string, FloeProcess>();
  const all = new Set<FloeProcess>();
  const started: { name: string; p: FloeProcess }[] = [];
  const cluster: OwnedCluster = {
    nats,
    natsNodes,
    redis,
    dir,
    conf,
    hosts,
    async start(spec) {
      const root = join(dir, `root-${spec.name}`);
      mkdirSync(root, { recursive: true });
      const p = await startFloe({
        conf,
        root,
        host: spec.name,
        tags: [...(spec.tags ?? [])],
        extra: [`--nats=${spec.natsUrl ?? natsUrls}`, `--redis=${spec.redisUrl ?? redis.url}`, `--lease=${o.leaseS ?? 2}`, `--slots=${spec.slots ?? 4}`, ...(o.hostArgs ?? [])],
        env: { HOST_NAME: spec.name, ...(o.env ?? {}), ...(spec.env ?? {}) },
      });
      hosts.set(spec.name, p);
      all.add(p);
      started.push({ name: spec.name, p });
      return p;
    },
    host(name) {
      const h = hosts.get(name);
      if (h === undefined) throw new Error(`no live host ${name}`);
      return h;
    },
    async kill9(name) {
      await cluster.host(name).kill9();
      hosts.delete(name);
    },
    async settle(names) {
      for (const n of names) {
        await until(async () => {
          const r = await cluster.host(n).req("GET", "/hosts");
          const list = (r.body as { hosts: { name: string; up: boolean }[] }).hosts;
          return names.every((m) => list.some((h) => h.name === m && h.up));
        }, 20_000, `host ${n} to see ${names.join(", ")} up`);
      }
    },
    started: () => started,
    async close() {
      await Promise.allSettled([...all].map((h) => h.kill9()));
      await Promise.allSettled(natsNodes.map((b) => b.stop()));
      await redis.stop();
    },
  };
  return cluster;
}

export async function startCluster(t: Test, o: ClusterOptions): Promise<Cluster> {
  // Not the test's fixture dir: tap may remove that while the hosts still write their roots
  // (a timer fires every second); this one goes once the hosts are dead.
  const dir = mkdtempSync(join(tmpdir(), "floe-cluster-"));
  const cluster = await createCluster(dir, o);
  t.teardown(async () => {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return cluster;
}

/** Lines of an evidence file written by tasks themselves (not by floe). */
export function evidence(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
}
