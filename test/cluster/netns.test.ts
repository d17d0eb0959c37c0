/**
 * Hosts on their own network addresses: Redis, NATS and two floe hosts each in a network
 * namespace of their own, on a private bridge (test/helpers/netns.ts), the links cut by the
 * kernel rather than by a proxy:
 * - the executing host cut from Redis only (a route to nowhere on both sides), from
 *   everything (its cable pulled), and one way (Redis's replies to it dropped): its task
 *   stops before the other host's attempt starts (the tasks' own stamps), the run ends good
 *   on attempt 2, and the healed host comes back;
 * - the executing host cut from NATS only: its lease is fine, so its run stays and ends good
 *   there, and once healed its whole log reads from the other host.
 * Needs root; skipped (visibly, with the reason) where namespaces cannot be made.
 * Rounds of each: FLOE_NETNS_ROUNDS (default 1).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { evidence } from "../helpers/cluster.js";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { beats, stampedFlow } from "../helpers/beats.js";
import { until } from "../helpers/hub.js";
import { createNet, netnsAvailable, waitForPort, type TestNet } from "../helpers/netns.js";

const ROUNDS = Number(process.env["FLOE_NETNS_ROUNDS"] ?? 1);
const HOSTS = ["h1", "h2"] as const;

type Summary = { ref: { run: string; execHost?: string }; state: string; result?: string; attempt?: number };

function conf(dir: string): string {
  const ev = join(dir, "evidence.log");
  return `
flows:${stampedFlow(dir)}
  - id: chatty
    triggers: [{name: go, type: data}]
    tasks:
      - {name: talk, type: exec, listen: trigger.good, opts: {shell: 'echo "start $FLOE_RUN_ID $FLOE_HOST" >> ${ev}; for i in $(seq 1 30); do echo "line $i"; sleep 0.1; done'}}
`;
}

interface NetCluster {
  readonly net: TestNet;
  readonly dir: string;
  readonly hosts: Map<string, FloeProcess>;
}

async function startNetCluster(t: Test): Promise<NetCluster> {
  const dir = t.testdir();
  const net = await createNet();
  t.teardown(() => net.close());
  const redis = await net.add("redis");
  const nats = await net.add("nats");
  mkdirSync(join(dir, "nats"), { recursive: true });
  const brokers = [
    redis.spawn("redis-server", ["--bind", redis.addr, "--port", "6379", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]),
    nats.spawn("nats-server", ["-a", nats.addr, "-p", "4222", "-js", "-sd", join(dir, "nats")]),
  ];
  t.teardown(() => brokers.forEach((b) => b.kill("SIGKILL")));
  await waitForPort(redis.addr, 6379);
  await waitForPort(nats.addr, 4222);
  const confPath = join(dir, "flows.yml");
  writeFileSync(confPath, conf(dir));
  const hosts = new Map<string, FloeProcess>();
  for (const name of HOSTS) {
    const m = await net.add(name);
    const root = join(dir, `root-${name}`);
    mkdirSync(root, { recursive: true });
    const p = await startFloe({
      conf: confPath,
      root,
      host: name,
      prefix: ["ip", "netns", "exec", m.ns],
      extra: [`--bind=${m.addr}:0`, `--nats=nats://${nats.addr}:4222`, `--redis=redis://${redis.addr}:6379`, "--lease=2", "--slots=2"],
    });
    t.teardown(() => p.kill9());
    hosts.set(name, p);
  }
  for (const name of HOSTS) {
    await until(async () => {
      const list = ((await (hosts.get(name) as FloeProcess).req("GET", "/hosts")).body as { hosts: { name: string; up: boolean }[] }).hosts;
      return HOSTS.every((h) => list.some((x) => x.name === h && x.up));
    }, 30_000, `${name} to see both hosts up`);
  }
  return { net, dir, hosts };
}

function host(c: NetCluster, name: string): FloeProcess {
  return c.hosts.get(name) as FloeProcess;
}

async function runOf(c: NetCluster, via: string, run: string): Promise<Summary> {
  return (await host(c, via).req("GET", `/runs/${run}`)).body as Summary;
}

async function isUp(c: NetCluster, via: string, name: string): Promise<boolean> {
  return ((await host(c, via).req("GET", "/hosts")).body as { hosts: { name: string; up: boolean }[] }).hosts.some((h) => h.name === name && h.up);
}

interface Fault {
  readonly what: string;
  apply(net: TestNet, victim: string): Promise<void>;
  heal(net: TestNet, victim: string): Promise<void>;
}

const REDIS_FAULTS: readonly Fault[] = [
  {
    what: "cut from Redis only",
    apply: async (net, v) => {
      await net.blackhole(v, "redis");
      await net.blackhole("redis", v);
    },
    heal: async (net, v) => {
      await net.unblackhole(v, "redis");
      await net.unblackhole("redis", v);
    },
  },
  { what: "cut from everything (link down)", apply: (net, v) => net.cut(v), heal: (net, v) => net.uncut(v) },
  { what: "one way: Redis's replies to it dropped", apply: (net, v) => net.blackhole("redis", v), heal: (net, v) => net.unblackhole("redis", v) },
];

// Where namespaces cannot be made, both tests are skipped with the reason (never passed).
const unavailable = await netnsAvailable();
const skip = unavailable !== undefined ? { skip: unavailable } : {};

t.test("hosts in network namespaces: Redis cut both ways, the whole link, one way", skip, async (t) => {
  const c = await startNetCluster(t);
  const ev = join(c.dir, "evidence.log");
  for (let round = 1; round <= ROUNDS; round++) {
    for (const fault of REDIS_FAULTS) {
      const label = `${fault.what}${ROUNDS > 1 ? `, round ${round}` : ""}`;
      const started = await host(c, "h1").req("POST", "/flows/stamped/runs", {});
      t.equal(started.status, 201, `${label}: run started`);
      const run = (started.body as { run: { ref: { run: string } } }).run.ref.run;
      await until(() => beats(ev, run).length >= 3, 30_000, `${label}: the task to beat`);
      const victim = beats(ev, run)[0]?.host as string;
      const other = HOSTS.find((h) => h !== victim) as string;
      const cutAt = BigInt(Date.now()) * 1_000_000n;
      await fault.apply(c.net, victim);

      await until(() => beats(ev, run).filter((b) => b.attempt === 2).length >= 5, 30_000, `${label}: ${other} to run attempt 2`);
      await fault.heal(c.net, victim);
      writeFileSync(join(c.dir, `release-${run}-2`), "");
      await until(async () => (await runOf(c, other, run)).state === "archived", 30_000, `${label}: the run to end`);
      const s = await runOf(c, other, run);
      t.same({ result: s.result, attempt: s.attempt }, { result: "good", attempt: 2 }, `${label}: the run ended good on attempt 2`);
      await until(() => isUp(c, other, victim), 30_000, `${label}: ${victim} to be back`);

      const all = beats(ev, run);
      const first = all.filter((b) => b.attempt === 1);
      const second = all.filter((b) => b.attempt === 2);
      const lastOld = first.reduce((m, b) => (b.ns > m ? b.ns : m), 0n);
      const firstNew = second.reduce((m, b) => (b.ns < m ? b.ns : m), second[0]?.ns ?? 0n);
      t.ok(first.every((b) => b.host === victim) && second.every((b) => b.host === other), `${label}: attempt 1 on ${victim}, attempt 2 on ${other}`);
      t.ok(lastOld - cutAt < 2_500_000_000n, `${label}: ${victim} stopped its task within lease + margin of the fault (${Number(lastOld - cutAt) / 1e6} ms)`);
      t.ok(lastOld < firstNew, `${label}: ${victim}'s task stopped ${Number(firstNew - lastOld) / 1e6} ms before ${other}'s attempt began`);
    }
  }
});

t.test("hosts in network namespaces: a host cut from NATS only keeps its run; its log reaches the others once healed", skip, async (t) => {
  const c = await startNetCluster(t);
  const ev = join(c.dir, "evidence.log");
  for (let round = 1; round <= ROUNDS; round++) {
    const started = await host(c, "h1").req("POST", "/flows/chatty/runs", {});
    t.equal(started.status, 201, "run started");
    const run = (started.body as { run: { ref: { run: string } } }).run.ref.run;
    await until(() => evidence(ev).some((l) => l.startsWith(`start ${run} `)), 30_000, "the task to start");
    const victim = evidence(ev).find((l) => l.startsWith(`start ${run} `))?.split(" ")[2] as string;
    const other = HOSTS.find((h) => h !== victim) as string;
    await c.net.blackhole(victim, "nats");
    await c.net.blackhole("nats", victim);
    // Its lease is renewed through Redis: the run stays where it is and ends there.
    await until(async () => (await runOf(c, victim, run)).state === "archived", 30_000, "the run to end on its host while cut from NATS");
    const own = await runOf(c, victim, run);
    t.same({ result: own.result, attempt: own.attempt, host: own.ref.execHost }, { result: "good", attempt: 1, host: victim }, `the run ended good on ${victim}, attempt 1, while cut from NATS`);
    await c.net.unblackhole(victim, "nats");
    await c.net.unblackhole("nats", victim);
    const want = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    const read = async () => ((((await host(c, other).req("GET", `/runs/${run}/nodes/talk/log`)).body as { lines?: { stream: string; text: string }[] }).lines ?? []).filter((l) => l.stream === "out").map((l) => l.text));
    await until(async () => JSON.stringify(await read()) === JSON.stringify(want), 60_000, `the log to reach ${other}`).catch(() => undefined);
    t.same(await read(), want, `once healed, ${other} reads the whole log of the run that ${victim} ran while cut from NATS`);
    await until(async () => (await runOf(c, other, run)).state === "archived", 30_000, `${other} to see the run ended`);
    t.equal((await runOf(c, other, run)).result, "good", `${other} sees the run good`);
    t.equal(evidence(ev).filter((l) => l.startsWith(`start ${run} `)).length, 1, "the task ran once");
  }
});
