/**
 * Measure 7: three hosts on this machine, joined by their own nats-server and redis-server.
 * - throughput: the three-task `true` chain triggered round-robin on the three hosts, as in
 *   measure 1; baseline: the single embedded host of measure 1 when it ran (else none);
 * - trigger → first task across hosts: triggered on h1, executed on h3 (the only host with
 *   tag `far`), idle, from the bench's clock to the task's own `date +%s%N`;
 * - host loss → re-dispatch: a run holding a task on one of two `v` hosts, that host killed
 *   with -9; the time until the run's task runs again on the other host (its stamp), with
 *   the default lease (2 s).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { startNats, startRedis, type Broker } from "../helpers/servers.js";
import { CHAIN_TRUE, nodeOutput, triggerOne, type BenchHost } from "./host.js";
import { nowMs, optionalRatio, ratioOf, summarize, type BenchOptions, type Figure } from "./stats.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function config(evidence: string, release: string): string {
  // Measure 1's chain, and two flows of this measure's own.
  return `${CHAIN_TRUE.trimEnd()}
  - id: far
    host-tags: [far]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "date +%s%N"}}
  - id: hold
    host-tags: [v]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: 'echo "$FLOE_RUN_ID $FLOE_ATTEMPT $FLOE_HOST $(date +%s%N)" >> ${evidence}; for i in $(seq 1200); do [ -f ${release} ] && break; sleep 0.1; done'}}
`;
}

interface Cluster {
  readonly hosts: Map<string, FloeProcess>;
  start(name: string, tags: string[]): Promise<FloeProcess>;
  close(): Promise<void>;
}

async function startCluster(dir: string, conf: string, slots: number): Promise<Cluster> {
  const brokers: Broker[] = [];
  const nats = await startNats(dir);
  brokers.push(nats);
  const redis = await startRedis(dir);
  brokers.push(redis);
  const hosts = new Map<string, FloeProcess>();
  const all: FloeProcess[] = [];
  return {
    hosts,
    async start(name, tags) {
      const p = await startFloe({ conf, root: join(dir, `root-${name}`), host: name, tags, extra: [`--nats=${nats.url}`, `--redis=${redis.url}`, `--slots=${slots}`] });
      hosts.set(name, p);
      all.push(p);
      return p;
    },
    async close() {
      await Promise.allSettled(all.map((p) => p.kill9()));
      await Promise.allSettled(brokers.map((b) => b.stop()));
    },
  };
}

const asBench = (floe: FloeProcess): BenchHost => ({ floe, root: "", pid: floe.child.pid ?? 0, close: async () => undefined });

async function settle(c: Cluster, names: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (const n of names) {
    for (;;) {
      const r = await c.hosts.get(n)?.req("GET", "/hosts");
      const list = (r?.body as { hosts?: { name: string; up: boolean }[] } | undefined)?.hosts ?? [];
      if (names.every((m) => list.some((h) => h.name === m && h.up))) break;
      if (Date.now() > deadline) throw new Error(`bench: hosts did not see each other (${names.join(", ")})`);
      await sleep(50);
    }
  }
}

async function ended(h: FloeProcess, run: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = (await h.req("GET", `/runs/${run}`)).body as { state?: string; result?: string };
    if (s.state === "archived") return s.result ?? "?";
    if (Date.now() > deadline) throw new Error(`bench: run ${run} did not end within ${timeoutMs} ms`);
    await sleep(5);
  }
}

export async function benchCluster(o: BenchOptions, singleHostRunsPerSec: number | undefined): Promise<Figure[]> {
  const dir = await mkdtemp(join(tmpdir(), "floe-bench-cluster-"));
  const evidence = join(dir, "evidence.log");
  const conf = join(dir, "flows.yml");
  // Tasks of killed hosts outlive them; this file ends them all when the measure is done.
  const release = join(dir, "release");
  await writeFile(conf, config(evidence, release));
  const c = await startCluster(dir, conf, o.slots);
  const figures: Figure[] = [];
  try {
    await Promise.all([c.start("h1", []), c.start("h2", ["v"]), c.start("h3", ["far", "v"])]);
    await settle(c, ["h1", "h2", "h3"]);
    const names = ["h1", "h2", "h3"];
    const host = (n: string): FloeProcess => {
      const h = c.hosts.get(n);
      if (h === undefined) throw new Error(`bench: no host ${n}`);
      return h;
    };

    // Throughput across the three hosts.
    const runs = o.quick ? 30 : 300;
    for (let i = 0; i < 9; i++) await ended(host("h1"), (await triggerOne(asBench(host(names[i % 3] as string)), "chain")).run, 30_000);
    o.progress(`cluster: ${runs} runs over three hosts`);
    const t0 = nowMs();
    let next = 0;
    const started: { run: string; via: string }[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < runs) {
          const via = names[next++ % 3] as string;
          started.push({ run: (await triggerOne(asBench(host(via)), "chain")).run, via });
        }
      }),
    );
    for (const s of started) {
      const result = await ended(host(s.via), s.run, 120_000);
      if (result !== "good") throw new Error(`bench: run ${s.run} ended ${result}`);
    }
    const rate = runs / ((nowMs() - t0) / 1000);
    figures.push({
      id: "cluster.runs_per_s",
      what: "throughput, 3 hosts on this machine, 3 × `true`",
      unit: "runs/s",
      value: rate,
      ...(singleHostRunsPerSec !== undefined ? { baseline: { what: "one embedded host (measure 1)", value: singleHostRunsPerSec }, ratio: rate / singleHostRunsPerSec } : {}),
      clock: "bench wall clock, first trigger sent → last run seen archived",
      note: "three hosts share this machine's two cores with NATS and Redis: this shows the cost of the cluster, not its scaling",
    });

    // Trigger on h1 → first task on h3.
    const n = o.quick ? 6 : 40;
    const samples: number[] = [];
    const local: number[] = [];
    for (let i = 0; i < n; i++) {
      for (const [via, out] of [["h1", samples], ["h3", local]] as const) {
        const t = await triggerOne(asBench(host(via)), "far");
        await ended(host(via), t.run, 30_000);
        const stamp = (await nodeOutput(asBench(host(via)), t.run, "a"))[0] ?? "";
        out.push(Number(BigInt(stamp.trim()) / 1000n) / 1000 - t.sentAt);
        await sleep(20);
      }
    }
    const across = summarize(samples);
    const same = summarize(local);
    figures.push({
      id: "cluster.trigger_to_first_task.idle",
      what: "trigger on h1 → first task running on h3, idle",
      unit: "ms",
      dist: across,
      baseline: { what: "triggered on h3 itself", dist: same },
      ...optionalRatio(ratioOf({ dist: across }, { dist: same })),
      clock: "bench wall clock at send → the task's own `date +%s%N`",
    });

    // kill -9 of the host running a task → the task running again on the other host.
    const losses = o.quick ? 1 : 5;
    const redispatch: number[] = [];
    for (let i = 0; i < losses; i++) {
      o.progress(`cluster: host loss ${i + 1} of ${losses}`);
      const { run } = await triggerOne(asBench(host("h1")), "hold");
      const line = async (attempt: number): Promise<string[] | undefined> => {
        const text = await readFile(evidence, "utf8").catch(() => "");
        return text
          .split("\n")
          .map((l) => l.split(" "))
          .find((p) => p[0] === run && p[1] === String(attempt));
      };
      let first: string[] | undefined;
      for (const deadline = Date.now() + 30_000; (first = await line(1)) === undefined; await sleep(5)) if (Date.now() > deadline) throw new Error("bench: the held run did not start");
      const victim = first[2] as string;
      const killedAt = nowMs();
      await host(victim).kill9();
      c.hosts.delete(victim);
      let second: string[] | undefined;
      for (const deadline = Date.now() + 60_000; (second = await line(2)) === undefined; await sleep(5)) if (Date.now() > deadline) throw new Error("bench: the run was not re-dispatched after its host was killed");
      redispatch.push(Number(BigInt(second[3] ?? "0") / 1000n) / 1000 - killedAt);
      // Cancel it (its task sleeps), bring the victim back with its root, let the cluster settle.
      await host("h1").req("POST", `/runs/${run}/cancel`, {});
      await c.start(victim, victim === "h3" ? ["far", "v"] : ["v"]);
      await settle(c, ["h1", "h2", "h3"]);
    }
    figures.push({
      id: "cluster.host_loss_redispatch",
      what: "kill -9 of a host → its run's task running on another (lease 2 s)",
      unit: "ms",
      dist: summarize(redispatch),
      clock: "bench wall clock at the kill → the new attempt's `date +%s%N`",
      note: `${losses} losses; the lease (2 s) runs from the killed host's last heartbeat (up to 0.67 s before the kill), then the next heartbeat of a host that reaps (up to 0.67 s)`,
    });
  } finally {
    await writeFile(release, "").catch(() => undefined);
    await c.close();
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}
