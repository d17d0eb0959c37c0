/**
 * Child runs when hosts die (kill -9), on a real cluster (own nats-server and redis-server),
 * each run following its own flow's on-host-loss:
 * - the child's host dies, child flow `requeue`: the child finishes on another host (attempt
 *   2), the parent waits for that same child and ends good with its outputs;
 * - the parent's host dies, parent flow `requeue`: the parent's new attempt, on another host,
 *   re-attaches to the child still running; no second child is started;
 * - the parent's host dies, parent flow `fail`: the parent ends lost and its child is cancelled;
 * - the child's host dies, child flow `fail`: the child ends lost and the parent task bad.
 * Evidence comes from lines the tasks append themselves.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster, type Cluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

interface Detail {
  ref: { run: string; execHost?: string };
  state: string;
  result?: string;
  reason?: string;
  attempt: number;
  nodes: { id: string; state: string; child?: string; reason?: string; outputs?: Record<string, string> }[];
}

function conf(dir: string): string {
  const ev = join(dir, "evidence.log");
  const gated = `echo "start $GATE $FLOE_RUN_ID $HOST_NAME" >> ${ev}; while [ ! -f ${dir}/release-$GATE ]; do sleep 0.05; done; echo "DONE_ON=$HOST_NAME" >> $FLOE_OUTPUT`;
  const parent = (id: string, loss: string, child: string): string => `
  - id: ${id}
    host-tags: [builder]
    on-host-loss: ${loss}
    triggers: [{id: go, type: data}]
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: ${child}, pass: [GATE]}}
      - {id: done, type: end, listen: task.call.good}`;
  const child = (id: string, loss: string): string => `
  - id: ${id}
    host-tags: [deployer]
    on-host-loss: ${loss}
    triggers: [{id: go, type: data}]
    tasks:
      - {id: work, type: exec, listen: trigger.good, opts: {shell: '${gated}'}}
      - {id: done, type: end, listen: task.work.good}`;
  return `flows:${parent("pipe", "requeue", "gated")}${parent("pipe-fragile", "fail", "gated")}${parent("pipe-to-fragile", "requeue", "gated-fragile")}${child("gated", "requeue")}${child("gated-fragile", "fail")}\n`;
}

t.test("host loss under a child run and under its parent", async (t) => {
  const dir = t.testdir({});
  const ev = join(dir, "evidence.log");
  const c = await startCluster(t, { conf: conf(dir) });
  const tags: Record<string, string[]> = { b1: ["builder"], b2: ["builder"], d1: ["deployer"], d2: ["deployer"] };
  await Promise.all(Object.entries(tags).map(([name, tg]) => c.start({ name, tags: tg })));
  await c.settle(Object.keys(tags));
  const live = (): string => [...c.hosts.keys()][0] as string;
  const get = async (run: string): Promise<Detail> => (await c.host(live()).req("GET", `/runs/${run}`)).body as Detail;
  const ended = async (run: string, ms = 60_000): Promise<Detail> => {
    await until(async () => (await get(run)).state === "archived", ms, `run ${run} to end`);
    return get(run);
  };
  const trigger = async (flow: string, gate: string): Promise<string> => {
    const r = await c.host(live()).req("POST", `/flows/${flow}/runs`, { values: { GATE: gate } });
    if (r.status !== 201) throw new Error(`trigger ${flow}: ${r.status} ${JSON.stringify(r.body)}`);
    return (r.body as { run: { ref: { run: string } } }).run.ref.run;
  };
  /** The child of a parent's call node and the host its task started on (from the task's own line). */
  const childOf = async (parent: string, gate: string): Promise<{ child: string; host: string }> => {
    let child: string | undefined;
    await until(async () => (child = (await get(parent)).nodes.find((n) => n.id === "call")?.child) !== undefined && evidence(ev).some((l) => l.startsWith(`start ${gate} ${child} `)), 30_000, `the child of ${parent} to start`);
    const line = evidence(ev).find((l) => l.startsWith(`start ${gate} ${child} `)) as string;
    return { child: child as string, host: line.split(" ")[3] as string };
  };
  const restart = async (name: string): Promise<void> => {
    await c.start({ name, tags: tags[name] ?? [] });
    await c.settle(Object.keys(tags));
  };

  await t.test("the child's host dies (child requeue): the child finishes elsewhere, the parent waits for it", async (t) => {
    const run = await trigger("pipe", "a");
    const { child, host } = await childOf(run, "a");
    await c.kill9(host);
    // Requeued as attempt 2 on the other deployer, its task starts again there.
    await until(() => evidence(ev).some((l) => l.startsWith(`start a ${child} `) && !l.endsWith(` ${host}`)), 40_000, "the child's task to start again on another host");
    writeFileSync(join(dir, "release-a"), "");
    const p = await ended(run);
    t.equal(p.result, "good", p.reason ?? "");
    const call = p.nodes.find((n) => n.id === "call");
    t.equal(call?.child, child, "the same child");
    const other = host === "d1" ? "d2" : "d1";
    t.same(call?.outputs, { DONE_ON: other }, "with the outputs of the attempt that finished");
    const cd = await get(child);
    t.equal(cd.attempt, 2);
    t.equal(cd.ref.execHost, other);
    await restart(host);
  });

  await t.test("the parent's host dies (parent requeue): its next attempt re-attaches to the running child", async (t) => {
    const run = await trigger("pipe", "b");
    const { child } = await childOf(run, "b");
    const parentHost = (await get(run)).ref.execHost as string;
    await c.kill9(parentHost);
    await until(async () => {
      const p = await get(run);
      return p.attempt === 2 && p.state === "active" && p.nodes.find((n) => n.id === "call")?.child === child;
    }, 40_000, "the parent's second attempt to re-attach");
    t.equal((await get(child)).state, "active", "the child ran on meanwhile");
    writeFileSync(join(dir, "release-b"), "");
    const p = await ended(run);
    t.equal(p.result, "good", p.reason ?? "");
    t.not(p.ref.execHost, parentHost);
    t.equal(p.nodes.find((n) => n.id === "call")?.child, child);
    t.equal(evidence(ev).filter((l) => l.startsWith("start b ")).length, 1, "one child, whose task ran once");
    const runs = (await c.host(live()).req("GET", "/runs?flow=gated&limit=100")).body as { runs: { ref: { run: string }; trigger: { values: Record<string, string> } }[] };
    t.equal(runs.runs.filter((r) => r.trigger.values["GATE"] === "b").length, 1, "no second child run");
    await restart(parentHost);
  });

  await t.test("the parent's host dies (parent fail): the parent ends lost, its child is cancelled", async (t) => {
    const run = await trigger("pipe-fragile", "c");
    const { child } = await childOf(run, "c");
    const parentHost = (await get(run)).ref.execHost as string;
    await c.kill9(parentHost);
    const p = await ended(run);
    t.equal(p.result, "lost");
    const cd = await ended(child, 40_000);
    t.equal(cd.result, "cancelled");
    t.match(cd.reason, `cancelled by parent run ${run} (it ended lost)`);
    await restart(parentHost);
  });

  await t.test("the child's host dies (child fail): the child ends lost, the parent task bad", async (t) => {
    const run = await trigger("pipe-to-fragile", "d");
    const { child, host } = await childOf(run, "d");
    await c.kill9(host);
    const p = await ended(run);
    t.equal(p.result, "bad");
    const call = p.nodes.find((n) => n.id === "call");
    t.equal(call?.state, "bad");
    t.match(call?.reason, `child run ${child} of flow gated-fragile ended lost: host ${host} was lost`);
    t.equal((await get(child)).result, "lost");
  });
  // Release what the killed hosts left running (their tasks outlive them).
  for (const g of ["a", "b", "c", "d"]) writeFileSync(join(dir, `release-${g}`), "");
});
