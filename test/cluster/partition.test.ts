/**
 * A host cut off from Redis while it stays awake (its NATS link up), on a real two-host
 * cluster: each host reaches Redis through a fault proxy of its own. A run of a
 * `resource-tags: [db]` flow executes on one host, whose task appends a line with a
 * nanosecond stamp every 100 ms; that host's link to Redis is cut (bytes held, delivered on
 * healing, as a partition does to TCP) or slowed (every reply held 1.5 s). The other host
 * takes the run over after the lease; the cut host must have stopped its task first: the
 * two attempts never hold the `db` lock at once, by the tasks' own stamps. Round after
 * round on one cluster, each round's executor being cut, then healed.
 *
 * Rounds: FLOE_PARTITION_ROUNDS (default 10 cut, 10 slowed).
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { startCluster, type Cluster } from "../helpers/cluster.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { beats, stampedFlow } from "../helpers/beats.js";
import { until } from "../helpers/hub.js";
import { SCRIPTS } from "../../store/redis-scripts.js";

const ROUNDS = Number(process.env["FLOE_PARTITION_ROUNDS"] ?? 10);
const HOSTS = ["p1", "p2"] as const;

type Summary = { ref: { run: string; execHost?: string }; state: string; result?: string; attempt?: number };

function conf(dir: string): string {
  return `flows:${stampedFlow(dir)}`;
}

async function runOf(c: Cluster, via: string, run: string): Promise<Summary> {
  return (await c.host(via).req("GET", `/runs/${run}`)).body as Summary;
}

async function isUp(c: Cluster, via: string, host: string): Promise<boolean> {
  return ((await c.host(via).req("GET", "/hosts")).body as { hosts: { name: string; up: boolean }[] }).hosts.some((h) => h.name === host && h.up);
}

/** Two hosts, each reaching Redis through a fault proxy of its own, and the evidence file. */
async function proxiedCluster(t: Test): Promise<{ c: Cluster; ev: string; proxies: Map<string, FaultProxy> }> {
  const c = await startCluster(t, { conf: conf("/dev/null") });
  // The flows file needs the cluster's own folder: write it again now that it exists.
  writeFileSync(c.conf, conf(c.dir));
  const proxies = new Map<string, FaultProxy>();
  for (const name of HOSTS) {
    const p = await startFaultProxy(c.redis.port);
    t.teardown(() => p.close());
    proxies.set(name, p);
  }
  for (const name of HOSTS) await c.start({ name, redisUrl: proxies.get(name)?.url("redis") as string });
  await c.settle([...HOSTS]);
  return { c, ev: join(c.dir, "evidence.log"), proxies };
}

async function partitionRounds(t: Test, fault: (p: FaultProxy) => void, what: string): Promise<void> {
  const { c, ev, proxies } = await proxiedCluster(t);

  for (let round = 1; round <= ROUNDS; round++) {
    const started = await c.host("p1").req("POST", "/flows/stamped/runs", {});
    t.equal(started.status, 201, `round ${round}: run started`);
    const run = (started.body as { run: { ref: { run: string } } }).run.ref.run;
    await until(() => beats(ev, run).length >= 3, 30_000, `round ${round}: the task to beat`);
    const cutHost = beats(ev, run)[0]?.host as string;
    const other = HOSTS.find((h) => h !== cutHost) as string;
    const cutAt = BigInt(Date.now()) * 1_000_000n;
    fault(proxies.get(cutHost) as FaultProxy);

    await until(() => beats(ev, run).some((b) => b.attempt === 2), 30_000, `round ${round}: ${other} to start attempt 2`);
    // Let attempt 2 beat a few times with the link still cut: an overlap would show now.
    await until(() => beats(ev, run).filter((b) => b.attempt === 2).length >= 5, 30_000, `round ${round}: attempt 2 to beat`);

    // Heal; attempt 2 ends the run; the healed host runs nothing more for it.
    (proxies.get(cutHost) as FaultProxy).heal();
    writeFileSync(join(c.dir, `release-${run}-2`), "");
    await until(async () => (await runOf(c, other, run)).state === "archived", 30_000, `round ${round}: the run to end`);
    const s = await runOf(c, other, run);
    t.same({ result: s.result, attempt: s.attempt }, { result: "good", attempt: 2 }, `round ${round}: the run ended good on its second attempt`);
    await until(() => isUp(c, other, cutHost), 30_000, `round ${round}: ${cutHost} to be back`);
    await until(async () => (await runOf(c, cutHost, run)).state === "archived", 30_000, `round ${round}: ${cutHost} to see the run archived`);

    // The tasks' own evidence, whole: every beat of attempt 1 came before the first of attempt 2.
    const all = beats(ev, run);
    const first = all.filter((b) => b.attempt === 1);
    const second = all.filter((b) => b.attempt === 2);
    const lastOld = first.reduce((m, b) => (b.ns > m ? b.ns : m), 0n);
    const firstNew = second.reduce((m, b) => (b.ns < m ? b.ns : m), second[0]?.ns ?? 0n);
    t.ok(first.every((b) => b.host === cutHost) && second.every((b) => b.host === other), `round ${round}: attempt 1 on ${cutHost}, attempt 2 on ${other}`);
    // The protocol's bound: stopped by the last renewal sent before the fault + lease − margin.
    t.ok(lastOld - cutAt < 2_500_000_000n, `round ${round}: the cut host stopped its task within lease + margin of the fault`);
    t.ok(lastOld < firstNew, `round ${round} (${what}): ${cutHost}'s task stopped ${Number(lastOld - cutAt) / 1e6} ms after the fault, ${Number(firstNew - lastOld) / 1e6} ms before ${other}'s attempt began`);
  }
}

t.test("a host cut from Redis, awake: its task stops before the other host's attempt starts", async (t) => {
  await partitionRounds(t, (p) => p.cut(), "link cut");
});

t.test("a host whose Redis replies are held 1.5 s: the same", async (t) => {
  await partitionRounds(t, (p) => p.slowReplies(1500), "replies held 1.5 s");
});

t.test("a run that ends on a host cut from Redis as it commits its end: the cluster's rerun is its one end", async (t) => {
  const { c, ev, proxies } = await proxiedCluster(t);
  for (let round = 1; round <= Math.min(ROUNDS, 3); round++) {
    const started = await c.host("p1").req("POST", "/flows/stamped/runs", {});
    const run = (started.body as { run: { ref: { run: string } } }).run.ref.run;
    await until(() => beats(ev, run).length >= 2, 30_000, `round ${round}: the task to beat`);
    const cutHost = beats(ev, run)[0]?.host as string;
    const other = HOSTS.find((h) => h !== cutHost) as string;
    // The task ends; its host checks the run is still its own, and the link is cut just as
    // the release — the run end's commit — is sent.
    (proxies.get(cutHost) as FaultProxy).cutWhenSent(SCRIPTS.release.sha);
    writeFileSync(join(c.dir, `release-${run}-1`), "");
    await until(() => beats(ev, run).some((b) => b.attempt === 2), 30_000, `round ${round}: ${other} to run attempt 2`);
    (proxies.get(cutHost) as FaultProxy).heal();
    writeFileSync(join(c.dir, `release-${run}-2`), "");
    await until(async () => (await runOf(c, other, run)).state === "archived", 30_000, `round ${round}: the run to end`);
    await until(() => isUp(c, other, cutHost), 30_000, `round ${round}: ${cutHost} to be back`);
    await until(async () => (await runOf(c, cutHost, run)).state === "archived", 30_000, `round ${round}: ${cutHost} to see the run ended`);
    for (const via of HOSTS) {
      const s = await runOf(c, via, run);
      t.same({ result: s.result, attempt: s.attempt, host: s.ref.execHost }, { result: "good", attempt: 2, host: other }, `round ${round}: ${via} sees one end: good, attempt 2, on ${other}`);
    }
    t.notOk(existsSync(join(c.dir, `root-${cutHost}`, "floes", "stamped", "1", "archive", run)), `round ${round}: ${cutHost} archived nothing for it (its end was never committed)`);
  }
});

t.test("a run whose commit is held until its host has stood down, and lands before any takeover: that end counts, once", async (t) => {
  const { c, ev, proxies } = await proxiedCluster(t);
  for (let round = 1; round <= Math.min(ROUNDS, 3); round++) {
    const started = await c.host("p1").req("POST", "/flows/stamped/runs", {});
    const run = (started.body as { run: { ref: { run: string } } }).run.ref.run;
    await until(() => beats(ev, run).length >= 2, 30_000, `round ${round}: the task to beat`);
    const cutHost = beats(ev, run)[0]?.host as string;
    const proxy = proxies.get(cutHost) as FaultProxy;
    const standDowns = () => c.host(cutHost).output().split("no renewal of this host's lease came back").length;
    const before = standDowns();
    proxy.cutWhenSent(SCRIPTS.release.sha);
    writeFileSync(join(c.dir, `release-${run}-1`), "");
    // Held past the stand-down (lease − margin = 1.5 s after the last renewal) but healed
    // before a reap could happen (lease + margin = 2.5 s after it): the release lands.
    await until(() => standDowns() > before, 10_000, `round ${round}: ${cutHost} to stand down`);
    proxy.heal();
    for (const via of HOSTS) {
      await until(async () => (await runOf(c, via, run)).state === "archived", 30_000, `round ${round}: ${via} to see the run ended`);
      const s = await runOf(c, via, run);
      t.same({ result: s.result, attempt: s.attempt, host: s.ref.execHost }, { result: "good", attempt: 1, host: cutHost }, `round ${round}: ${via} sees its one end: good, attempt 1, on ${cutHost}`);
    }
    t.equal(beats(ev, run).filter((b) => b.attempt === 2).length, 0, `round ${round}: it never ran again`);
  }
});
