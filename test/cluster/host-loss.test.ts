/**
 * Hosts that die or freeze, on a real three-host cluster:
 * - kill -9 of the host running a long task: `requeue` finishes the run on another host
 *   as attempt 2 and frees its lock; `fail` ends it `lost` and its task never runs again;
 * - SIGSTOP of a host (and of its task) past its lease, then SIGCONT: the run is taken over,
 *   the stale host kills its task, runs nothing more for it and records nothing for it;
 * - SIGSTOP of a host alone while its task finishes: on waking it has the task's end queued,
 *   and must not start the run's next task, which the other host has run meanwhile.
 * Evidence comes from lines the tasks append themselves.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { evidence, startCluster, type Cluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

type Summary = { ref: { run: string; execHost?: string }; state: string; result?: string; reason?: string; attempt?: number };

function conf(dir: string): string {
  const ev = join(dir, "evidence.log");
  // `long` waits for a release file, so the test decides when it may finish.
  const long = (tag: string) =>
    `echo "${tag}-start $FLOE_RUN_ID $HOST_NAME" >> ${ev}; echo $$ > ${dir}/pid-$FLOE_RUN_ID-$HOST_NAME; while [ ! -f ${dir}/release ]; do sleep 0.05; done; echo "${tag}-end $FLOE_RUN_ID $HOST_NAME" >> ${ev}`;
  return `
flows:
  - id: requeued
    resource-tags: [deploy]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: long, type: exec, listen: trigger.good, opts: {shell: '${long("requeued")}'}}
      - {name: after, type: exec, listen: task.long.good, opts: {shell: 'echo "requeued-after $FLOE_RUN_ID $HOST_NAME" >> ${ev}'}}
  - id: fragile
    on-host-loss: fail
    triggers: [{name: go, type: data}]
    tasks:
      - {name: long, type: exec, listen: trigger.good, opts: {shell: '${long("fragile")}'}}
  - id: two-step
    resource-tags: [deploy]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: first, type: exec, listen: trigger.good, opts: {shell: 'echo "first-start $FLOE_RUN_ID $HOST_NAME" >> ${ev}; while [ ! -f ${dir}/go ]; do sleep 0.05; done'}}
      - {name: second, type: exec, listen: task.first.good, opts: {shell: 'echo "second-start $FLOE_RUN_ID $HOST_NAME" >> ${ev}'}}
  - id: next-in-line
    resource-tags: [deploy]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: quick, type: exec, listen: trigger.good, opts: {shell: 'echo "next $FLOE_RUN_ID $HOST_NAME" >> ${ev}'}}
`;
}

async function runOf(c: Cluster, via: string, run: string): Promise<Summary> {
  return (await c.host(via).req("GET", `/runs/${run}`)).body as Summary;
}

/** Runs pending or active anywhere in the cluster, as seen from one host. */
async function openRuns(c: Cluster, via: string): Promise<number> {
  let n = 0;
  for (const state of ["pending", "active"]) n += ((await c.host(via).req("GET", `/runs?state=${state}`)).body as { runs: Summary[] }).runs.length;
  return n;
}

async function start(c: Cluster, via: string, flow: string): Promise<string> {
  const r = await c.host(via).req("POST", `/flows/${flow}/runs`, {});
  if (r.status !== 201) throw new Error(`start ${flow}: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { run: { ref: { run: string } } }).run.ref.run;
}

/** A two-host cluster with a run of `flow` started through h1; `stale` is the host running it. */
async function twoHostsRunning(t: Test, flow: string): Promise<{ dir: string; ev: string; c: Cluster; run: string; stale: string; other: string }> {
  const dir = t.testdir({});
  const c = await startCluster(t, { conf: conf(dir) });
  await Promise.all(["h1", "h2"].map((name) => c.start({ name })));
  await c.settle(["h1", "h2"]);
  const run = await start(c, "h1", flow);
  const stale = await executor(c, "h1", run);
  return { dir, ev: join(dir, "evidence.log"), c, run, stale, other: stale === "h1" ? "h2" : "h1" };
}

/** Whether `host` is up, as `via` sees the cluster. */
async function isUp(c: Cluster, via: string, host: string): Promise<boolean> {
  return ((await c.host(via).req("GET", "/hosts")).body as { hosts: { name: string; up: boolean }[] }).hosts.some((h) => h.name === host && h.up);
}

async function executor(c: Cluster, via: string, run: string): Promise<string> {
  let host = "";
  await until(async () => {
    const s = await runOf(c, via, run);
    host = s.state === "active" ? (s.ref.execHost ?? "") : "";
    return host !== "";
  }, 30_000, `run ${run} to be active`);
  return host;
}

t.test("kill -9 of the executing host: requeue finishes elsewhere; fail ends lost and never runs twice", async (t) => {
  const dir = t.testdir({});
  const ev = join(dir, "evidence.log");
  const c = await startCluster(t, { conf: conf(dir) });
  await Promise.all(["h1", "h2", "h3"].map((name) => c.start({ name })));
  await c.settle(["h1", "h2", "h3"]);

  const req = await start(c, "h1", "requeued");
  const frag = await start(c, "h1", "fragile");
  const victimOfReq = await executor(c, "h1", req);
  await until(() => evidence(ev).some((l) => l.startsWith(`requeued-start ${req} `)), 20_000, "the long task to start");
  // A run waiting for the same lock, so we can see the lock freed after the loss.
  const next = await start(c, "h2", "next-in-line");
  t.match((await runOf(c, "h2", next)).state, /pending/, "next-in-line waits for the deploy lock");

  // Kill the host executing `requeued`, and the one executing `fragile` when that is another.
  const fragHost = await executor(c, "h1", frag);
  await until(() => evidence(ev).some((l) => l.startsWith(`fragile-start ${frag} `)), 20_000, "fragile to start");
  const killed = [...new Set([victimOfReq, fragHost])];
  const killedAt = Date.now();
  await Promise.all(killed.map((h) => c.kill9(h)));
  const survivor = ["h1", "h2", "h3"].find((h) => !killed.includes(h)) as string;
  t.comment(`killed ${killed.join(" and ")}; ${survivor} survives`);

  await until(() => evidence(ev).filter((l) => l.startsWith(`requeued-start ${req} `)).length === 2, 30_000, "the requeued run to start again elsewhere");
  t.comment(`re-dispatched ${Date.now() - killedAt} ms after kill -9`);
  const again = evidence(ev).filter((l) => l.startsWith(`requeued-start ${req} `))[1] ?? "";
  t.equal(again.split(" ")[2], survivor, "attempt 2 runs on the live host");
  const s = await runOf(c, survivor, req);
  t.equal(s.attempt, 2, "a new attempt");
  await until(async () => (await runOf(c, survivor, frag)).state === "archived", 30_000, "fragile to end lost");
  const f = await runOf(c, survivor, frag);
  t.equal(f.result, "lost", "on-host-loss: fail ends it lost");
  t.match(f.reason, /host .* was lost/);
  writeFileSync(join(dir, "release"), "");
  await until(async () => (await runOf(c, survivor, req)).state === "archived", 30_000, "requeued run to end");
  t.equal((await runOf(c, survivor, req)).result, "good", "requeue: the run completed on another host");
  await until(async () => (await runOf(c, survivor, next)).state === "archived", 30_000, "next-in-line to get the lock and end");
  t.equal(evidence(ev).filter((l) => l.startsWith(`requeued-after ${req} `)).length, 1, "the task after ran once");

  // A second start could only come from a pend or an active run: wait until there is none.
  await until(async () => (await openRuns(c, survivor)) === 0, 30_000, "no run pending or active in the cluster");
  t.equal(evidence(ev).filter((l) => l.startsWith(`fragile-start ${frag} `)).length, 1, "the fail flow's task never ran twice");
});

t.test("SIGSTOP past the lease, then SIGCONT: the run is taken over and the stale host writes nothing for it", async (t) => {
  const { dir, ev, c, run, stale, other } = await twoHostsRunning(t, "requeued");
  await until(() => existsSync(join(dir, `pid-${run}-${stale}`)), 20_000, "the task's pid file");
  const taskPid = Number(readFileSync(join(dir, `pid-${run}-${stale}`), "utf8").trim());
  const hostPid = c.host(stale).child.pid as number;
  // Freeze the host and its task: a host cut off from the cluster, as far as anyone can tell.
  process.kill(hostPid, "SIGSTOP");
  process.kill(taskPid, "SIGSTOP");
  try {
    await until(() => evidence(ev).filter((l) => l.startsWith(`requeued-start ${run} `)).length === 2, 30_000, "the other host to take the run over");
    t.ok(evidence(ev).some((l) => l === `requeued-start ${run} ${other}`), "attempt 2 on the other host");
    writeFileSync(join(dir, "release"), "");
    await until(async () => (await runOf(c, other, run)).state === "archived", 30_000, "the taken-over run to end");
  } finally {
    // The host wakes first; its task stays frozen, so only the host's kill can end it.
    process.kill(hostPid, "SIGCONT");
  }
  const final = await runOf(c, other, run);
  t.equal(final.result, "good");
  t.equal(final.ref.execHost, other);
  // The stale host must find its lease gone, kill its task, and stay silent.
  const gone = () => {
    try {
      process.kill(taskPid, 0);
      return readFileSync(`/proc/${taskPid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
    } catch {
      return true;
    }
  };
  try {
    await until(gone, 20_000, "the stale host to kill its task");
  } finally {
    if (!gone()) process.kill(taskPid, "SIGCONT");
  }
  // Awake again: the stale host renewed its lease (so it has fenced what it lost) and says so.
  await until(() => /taken over/.test(c.host(stale).output()), 20_000, "the stale host to notice its runs were taken over");
  await until(async () => await isUp(c, other, stale), 20_000, "the stale host to be up again");
  const lines = evidence(ev);
  t.equal(lines.filter((l) => l === `requeued-end ${run} ${stale}`).length, 0, "the stale task never finished");
  t.equal(lines.filter((l) => l.startsWith(`requeued-after ${run} `)).length, 1, "the next task ran once, on the new host only");
  const after = await runOf(c, stale, run);
  t.equal(after.result, "good", "the stale host did not overwrite the run's end");
  t.equal(after.ref.execHost, other);
  const activeDir = join(c.dir, `root-${stale}`, "floes", "requeued", "1", "active");
  t.same(existsSync(activeDir) ? readdirSync(activeDir) : [], [], "the stale host dropped its copy of the run");
});

t.test("a host stopped past its lease while its task ended does not start the next task on waking, even before it can reach Redis", async (t) => {
  const { dir, ev, c, run, stale, other } = await twoHostsRunning(t, "two-step");
  await until(() => evidence(ev).includes(`first-start ${run} ${stale}`), 20_000, "the first task to start");
  const hostPid = c.host(stale).child.pid as number;
  // Only the host stops: its spawn helper sees the task end and queues the news for it.
  process.kill(hostPid, "SIGSTOP");
  try {
    writeFileSync(join(dir, "go"), "");
    await until(() => evidence(ev).includes(`second-start ${run} ${other}`), 30_000, "the other host to run the whole run as attempt 2");
    await until(async () => (await runOf(c, other, run)).state === "archived", 30_000, "the taken-over run to end");
  } catch (e) {
    process.kill(hostPid, "SIGCONT");
    throw e;
  }
  // Redis hangs while the host wakes: its heartbeat can not tell it the lease is gone, and
  // it must not take its stale view for leave to go on (the chaos suite caught a host
  // starting the next task in such a window, over another run's resource lock).
  c.redis.signal("SIGSTOP");
  try {
    process.kill(hostPid, "SIGCONT");
    const journal = join(c.dir, `root-${stale}`, "floes", "two-step", "1", "active", run, "journal");
    // It either records the second task's start (the task end reached it first) or stands
    // down at once (its lease watchdog fired first, hub/lease.ts); in both it must not spawn.
    await until(() => (existsSync(journal) && readFileSync(journal, "utf8").includes('["second",{"t":"start"')) || /stood down/.test(c.host(stale).output()), 20_000, "the stale host to record the second task's start or stand down");
    // From here a host that did not ask would spawn the task within milliseconds.
    await until(() => /was not started|taken over/.test(c.host(stale).output()) || evidence(ev).includes(`second-start ${run} ${stale}`), 3_000, "the stale host to stop or to start the task").catch(() => undefined);
    t.notOk(evidence(ev).includes(`second-start ${run} ${stale}`), "no second task on the stale host while Redis hangs");
  } finally {
    c.redis.signal("SIGCONT");
  }
  await until(() => /taken over/.test(c.host(stale).output()), 20_000, "the stale host to notice its run was taken over");
  await until(async () => await isUp(c, other, stale), 20_000, "the stale host to be up again");
  t.same(evidence(ev).filter((l) => l.startsWith(`second-start ${run} `)), [`second-start ${run} ${other}`], "the second task ran once, on the other host only");
  const final = await runOf(c, other, run);
  t.equal(final.result, "good");
  t.equal(final.ref.execHost, other);
});
