/**
 * The Redis failover workload of test/cluster/sentinel-failover.test.ts and
 * sentinel-partition.test.ts (issue 21): one primary, one replica, three sentinels
 * (quorum 2), a nats-server and three `floe serve` hosts on `--redis=redis+sentinel://…`.
 * Runs are triggered throughout; before the primary is killed, the replica is kept from the
 * last writes on purpose (the primary gets a password its open connections keep and the
 * replica's link is killed, so it can not reconnect): pends whose 201 was sent, claims of
 * the `db` lock, runs' ends and tokens that the promoted replica never receives — checked
 * with the replication offsets. Then the primary is killed with -9 and the sentinels elect
 * the replica. From the tasks' own stamps and the hosts' own answers: every run answered
 * 201 ends exactly once, good; no two runs hold `db` at once; no fencing token is handed to
 * two runs, and every token of the new primary is above every token of the old one; nothing
 * is left pending or active on disk or in Redis. The same with the primary partitioned
 * instead of killed (its sockets held open, as a partition does), healing as a replica.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Test } from "tap";
import { Redis } from "ioredis";
import { beats } from "./beats.js";
import { startFaultProxy } from "./fault-proxy.js";
import { evidence, startCluster, type Cluster } from "./cluster.js";
import { until } from "./hub.js";
import { startRedis, startSentinel, type Broker } from "./servers.js";
import { redisKeys } from "../../store/redis-keys.js";

type Summary = { ref: { run: string }; state: string; result?: string; reason?: string };
const MASTER = "floe-primary";

function conf(dir: string): string {
  const ev = join(dir, "evidence.log");
  const stamps = join(dir, "stamps.log");
  // A locked task stamps `<ns> <host> <run> <attempt>` every 100 ms (test/helpers/beats.ts), then says it ended.
  const beat = `for i in 1 2 3 4 5 6; do echo "$(date +%s%N) $FLOE_HOST $FLOE_RUN_ID $FLOE_ATTEMPT" >> ${stamps}; sleep 0.1; done; echo "l $FLOE_RUN_ID $HOST_NAME" >> ${ev}`;
  return `
flows:
  - id: work
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: 'sleep 0.2'}}
      - {name: b, type: exec, listen: task.a.good, opts: {shell: 'sleep 0.2; echo "b $FLOE_RUN_ID $HOST_NAME" >> ${ev}'}}
  - id: locked
    resource-tags: [db]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: beat, type: exec, listen: trigger.good, opts: {shell: '${beat}'}}
`;
}

type Started = { run: string; flow: string; phase: string }[];

async function trigger(c: Cluster, n: number, phase: string, runs: Started): Promise<void> {
  const names = [...c.hosts.keys()];
  for (let i = 0; i < n; i++) {
    const via = names[(runs.length + i) % names.length] as string;
    const flow = i % 2 === 0 ? "locked" : "work";
    for (let attempt = 0; ; attempt++) {
      const r = await c.host(via).req("POST", `/flows/${flow}/runs`, {}).catch((e: unknown) => ({ status: 0, body: String(e) }));
      if (r.status === 201) {
        runs.push({ run: (r.body as { run: { ref: { run: string } } }).run.ref.run, flow, phase });
        break;
      }
      // While Redis fails over a trigger is refused (503): nothing was adopted; try again.
      if (r.status !== 503 && r.status !== 0) throw new Error(`trigger: ${r.status} ${JSON.stringify(r.body)}`);
      if (attempt > 600) throw new Error("triggers refused for too long");
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

/** Every fencing token seen in the `tokens` table, sampled from whichever server is primary. */
class TokenWatch {
  /** token → runs it was seen for. */
  readonly runsOf = new Map<string, Set<string>>();
  /** When each token was first seen (Date.now()). */
  readonly firstSeen = new Map<number, number>();
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(servers: readonly Broker[], key: string) {
    const conns = servers.map((b) => {
      const r = new Redis({ port: b.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 200 });
      r.on("error", () => undefined);
      void r.connect().catch(() => undefined);
      return { port: b.port, r };
    });
    this.loop = (async () => {
      while (!this.stopped) {
        await Promise.all(conns.map(async ({ port, r }) => this.sample(port, r, key).catch(() => undefined)));
        await new Promise((res) => setTimeout(res, 25));
      }
      for (const { r } of conns) r.disconnect();
    })();
  }

  private readonly forgotten = new Set<number>();

  /** Stops sampling a server (an old primary: what it holds from then on is not the cluster's). */
  forget(port: number): void {
    this.forgotten.add(port);
  }

  async sample(port: number, r: Redis, key: string): Promise<void> {
    if (r.status !== "ready" || this.forgotten.has(port)) return;
    const all = await r.hgetall(key);
    const at = Date.now();
    for (const [run, token] of Object.entries(all)) {
      if (!this.firstSeen.has(Number(token))) this.firstSeen.set(Number(token), at);
      const runs = this.runsOf.get(token) ?? new Set<string>();
      runs.add(run);
      this.runsOf.set(token, runs);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

function offset(info: string, field: string): number {
  return Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1);
}

/**
 * `kill`: the replica kept from the last writes, then the primary killed with -9. `partition`:
 * everyone (sentinels, replica, hosts) reaches the primary through a fault proxy, whose cut
 * holds every byte both ways with the sockets open; after the election the link heals and
 * the sentinels turn the old primary into a replica of the new one.
 */
export async function sentinelScenario(t: Test, fault: "kill" | "partition"): Promise<void> {
  const dir = t.testdir({});
  const primary = await startRedis(join(dir, "p"));
  t.teardown(() => primary.stop());
  const proxy = fault === "partition" ? await startFaultProxy(primary.port) : undefined;
  if (proxy !== undefined) t.teardown(() => proxy.close());
  // Where the others find the primary.
  const primaryPort = proxy?.port ?? primary.port;
  const replica = await startRedis(join(dir, "r"), ["--replicaof", "127.0.0.1", String(primaryPort)]);
  t.teardown(() => replica.stop());
  const admin = new Redis(primary.port, "127.0.0.1");
  admin.on("error", () => undefined);
  t.teardown(() => admin.disconnect());
  const r1 = new Redis(replica.port, "127.0.0.1");
  await until(async () => /master_link_status:up/.test(await r1.info("replication")), 20_000, "the replica to sync");
  r1.disconnect();
  const sentinels = [];
  for (let i = 0; i < 3; i++) {
    const s = await startSentinel(join(dir, `s${i}`), primaryPort, MASTER, 2);
    t.teardown(() => s.stop());
    sentinels.push(s);
  }
  for (const s of sentinels) {
    const a = new Redis(s.port, "127.0.0.1");
    await until(async () => ((await a.call("SENTINEL", "replicas", MASTER)) as unknown[]).length > 0 && ((await a.call("SENTINEL", "sentinels", MASTER)) as unknown[]).length === 2, 30_000, "each sentinel to know the replica and the other two");
    a.disconnect();
  }
  const url = `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(",")}/${MASTER}`;

  // An 8 s lease: the failover (3–4 s here, then the reconnection through the sentinels)
  // stays within what a renewal vouches for (6 s), so the hosts need not stand down and
  // kill their tasks; the 10 s a new primary then waits for them to register again
  // (lease + margin) is the cost this test pays.
  const c = await startCluster(t, { conf: conf(dir), leaseS: 8 });
  await Promise.all(["h1", "h2", "h3"].map((name) => c.start({ name, redisUrl: url })));
  await c.settle(["h1", "h2", "h3"]);
  const tokens = new TokenWatch([primary, replica], redisKeys().table("tokens"));
  const runs: Started = [];

  await trigger(c, 9, "before", runs);
  await new Promise((r) => setTimeout(r, 800));

  if (fault === "kill") {
    // The replica stops receiving: what follows is acknowledged by the primary alone.
    await admin.call("CONFIG", "SET", "requirepass", "not-the-replicas");
    await admin.call("CLIENT", "KILL", "TYPE", "replica");
    await trigger(c, 6, "unreplicated", runs);
    await new Promise((r) => setTimeout(r, 700));
    const primaryOffset = offset(await admin.info("replication"), "master_repl_offset");
    const r2 = new Redis(replica.port, "127.0.0.1");
    const replicaOffset = offset(await r2.info("replication"), "slave_repl_offset");
    r2.disconnect();
    t.ok(primaryOffset > replicaOffset, `the replica misses writes the primary acknowledged (offsets ${replicaOffset} < ${primaryOffset})`);
    await primary.kill();
  } else {
    await trigger(c, 6, "unreplicated", runs);
    proxy?.cut();
  }
  // What the old primary holds from here is not the cluster's any more.
  tokens.forget(primary.port);
  const faultAt = Date.now();
  await trigger(c, 6, "during", runs);
  const s0 = new Redis(sentinels[0]?.port ?? 0, "127.0.0.1");
  await until(async () => {
    const addr = await s0.call("SENTINEL", "get-master-addr-by-name", MASTER);
    return Array.isArray(addr) && addr[1] === String(replica.port);
  }, 30_000, "the sentinels to elect the replica");
  s0.disconnect();
  const electedAt = Date.now();
  t.pass(`the replica was elected ${electedAt - faultAt} ms after the ${fault}`);
  await trigger(c, 6, "after", runs);
  if (proxy !== undefined) {
    // The partition heals: the old primary is back, and the sentinels make it a replica.
    proxy.heal();
    await until(async () => /role:slave/.test(await admin.info("replication").catch(() => "")), 30_000, "the old primary to be made a replica");
    t.pass("the old primary came back as a replica of the new one");
  }

  // Every run answered 201 ends, seen the same from every host.
  const ids = runs.map((r) => r.run);
  const results = new Map<string, Summary>();
  await until(async () => {
    for (const run of ids) {
      if (results.has(run)) continue;
      const views = await Promise.all(["h1", "h2", "h3"].map((h) => c.host(h).req("GET", `/runs/${run}`)));
      if (!views.every((v) => v.status === 200 && (v.body as Summary).state === "archived")) return false;
      results.set(run, views[0]?.body as Summary);
    }
    return true;
  }, 45_000, `${ids.length} runs to end on every host's view`).catch((e: unknown) => t.fail(`${String(e)}: ${ids.filter((r) => !results.has(r)).join(", ")} not ended`));
  await tokens.stop();

  const tally: Record<string, number> = {};
  for (const r of results.values()) tally[r.result ?? "none"] = (tally[r.result ?? "none"] ?? 0) + 1;
  t.same(tally, { good: ids.length }, "every run ended good");
  const lines = evidence(join(dir, "evidence.log"));
  const notOnce = (prefix: string, flow: string) =>
    runs.filter((r) => r.flow === flow).map(({ run, phase }) => ({ run, phase, times: lines.filter((l) => l.startsWith(`${prefix} ${run} `)).length })).filter((x) => x.times !== 1);
  t.same(notOnce("b", "work"), [], "each work run's last task ran exactly once");
  t.same(notOnce("l", "locked"), [], "each locked run's task ran to its end exactly once");

  // No two holders of db: each locked run's stamps span an interval; no two intersect.
  const spans = runs.filter((r) => r.flow === "locked").map(({ run }) => {
    const b = beats(join(dir, "stamps.log"), run);
    return { run, from: b[0]?.ns ?? 0n, to: b[b.length - 1]?.ns ?? 0n, n: b.length };
  });
  spans.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const overlaps: string[] = [];
  for (let i = 1; i < spans.length; i++) {
    const a = spans[i - 1];
    const b = spans[i];
    if (a !== undefined && b !== undefined && b.from <= a.to) overlaps.push(`${a.run} and ${b.run}: ${Number(a.to - b.from) / 1e6} ms`);
  }
  t.same(overlaps, [], `no two locked runs' tasks ran at once (${spans.length} runs, ${spans.reduce((n, s) => n + s.n, 0)} stamps)`);

  // Tokens: never one for two runs; every token of the new primary above every one of the old.
  const shared = [...tokens.runsOf].filter(([, r]) => r.size > 1).map(([tok, r]) => `${tok}: ${[...r].join(", ")}`);
  t.same(shared, [], `no token was handed to two runs (${tokens.runsOf.size} tokens seen)`);
  const seen = [...tokens.firstSeen];
  const before = seen.filter(([, at]) => at < faultAt).map(([tok]) => tok);
  // A run whose claim the new primary lost is taken back with the token the old primary gave
  // it (hub/failover.ts, the host's warning names it): a claim made in the watch's last 25 ms
  // before the kill is first seen after the election, yet it is not a token of the new
  // primary. Such runs must have been triggered before the fault.
  const hostsOut = [...c.hosts.values()].map((h) => h.output()).join("\n");
  const restoredRuns = new Set([...hostsOut.matchAll(/"run":"([^"]+)","msg":"the new primary had lost this run's claim/g)].map((m) => m[1]));
  const restoredToken = (tok: number) => [...(tokens.runsOf.get(String(tok)) ?? [])].every((run) => restoredRuns.has(run));
  const takenBack = seen.filter(([tok, at]) => at > electedAt && restoredToken(tok)).map(([tok]) => tok);
  const lateRuns = new Set(runs.filter((r) => r.phase === "during" || r.phase === "after").map((r) => r.run));
  t.same(takenBack.flatMap((tok) => [...(tokens.runsOf.get(String(tok)) ?? [])].filter((run) => lateRuns.has(run))), [], `tokens taken back with their runs (${takenBack.length}) are of runs triggered before the ${fault}`);
  const fresh = seen.filter(([tok, at]) => at > electedAt && !restoredToken(tok)).map(([tok]) => tok);
  t.ok(before.length > 0 && fresh.length > 0, `tokens seen before the ${fault} (${before.length}) and first seen after the election (${fresh.length})`);
  t.ok(Math.min(...fresh) > Math.max(...before), `the new primary's tokens (from ${Math.min(...fresh)}) are above the old primary's (up to ${Math.max(...before)})`);
  t.ok(Math.min(...fresh) > 2 ** 32, "and carry the failover's epoch");

  // What the hosts found lost and repaired (their own warnings).
  const out = [...c.hosts.values()].map((h) => h.output()).join("\n");
  const count = (re: RegExp) => out.split("\n").filter((l) => re.test(l)).length;
  const pendsBack = [...out.matchAll(/"pends":(\d+),"msg":"the new primary had lost pends/g)].reduce((n, m) => n + Number(m[1]), 0);
  const repaired = { pends: pendsBack, claims: count(/had lost this run's claim/), ends: count(/had lost this run's end/), fenced: count(/gave to another host during the failover/) };
  t.equal(count(/this host's runs are registered again/), 3, "each host registered its runs on the new primary once");
  if (fault === "kill") t.ok(repaired.pends + repaired.claims + repaired.ends > 0, `lost writes were found and repaired: ${JSON.stringify(repaired)}`);
  else t.comment(`lost writes found and repaired: ${JSON.stringify(repaired)}`);

  if (!t.passing()) {
    // The hosts' own account, for whoever looks into a failure.
    for (const [name, h] of c.hosts) writeFileSync(join(tmpdir(), `floe-sentinel-${fault}-${name}.log`), h.output());
    t.comment(`host logs in ${tmpdir()}/floe-sentinel-${fault}-*.log`);
  }

  // Nothing left at rest: no pend or active run on any host's disk, nor in Redis.
  for (const h of ["h1", "h2", "h3"]) {
    const root = join(c.dir, `root-${h}`);
    const left = (sub: string) => {
      try {
        return readdirSync(join(root, sub), { recursive: true }).filter((f) => String(f).endsWith("run.json"));
      } catch {
        return [];
      }
    };
    t.same([left("pending"), left("active")], [[], []], `${h}: nothing pending or active on disk`);
  }
  const now = new Redis(replica.port, "127.0.0.1");
  const k = redisKeys();
  const rest = { pends: await now.zcard(k.table("pendOrder")), parked: await now.zcard(k.table("parked")), active: await now.hlen(k.table("active")), held: await now.hlen(k.table("held")) };
  now.disconnect();
  t.same(rest, { pends: 0, parked: 0, active: 0, held: 0 }, "nothing pending, active or held in the new primary");
}
