/**
 * kill -9 of the host while a child run runs, then a restart: the resumed parent task
 * re-attaches to the child it started (journalled before the child was adopted) instead of
 * starting a second one, and ends with that child's outputs.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

const read = (f: string): string => (existsSync(f) ? readFileSync(f, "utf8") : "");

function conf(marks: string): string {
  return `
flows:
  - id: parent
    triggers: [{id: go, type: data}]
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: gated, values: {WHO: parent}}}
      - {id: done, type: end, listen: task.call.good}
  - id: fan
    triggers: [{id: go, type: data}]
    tasks:
      - {id: each, type: flow, listen: trigger.good, for-each: [x, y], opts: {flow: gated, values: {WHO: fan}}}
  - id: gated
    triggers: [{id: go, type: data}]
    tasks:
      - id: wait
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "start $FLOE_RUN_ID" >> ${marks}/log; while [ ! -f ${marks}/release$item ]; do sleep 0.05; done; while [ ! -f ${marks}/release ]; do sleep 0.05; done; echo "GREETING=hello $WHO" >> $FLOE_OUTPUT'}
      - {id: done, type: end, listen: task.wait.good}
`;
}

interface Detail {
  state: string;
  result?: string;
  reason?: string;
  parent?: { run: string; node: string };
  nodes: { id: string; state: string; child?: string; outputs?: Record<string, string> }[];
}

async function get(f: FloeProcess, run: string): Promise<Detail> {
  return (await f.req("GET", `/runs/${run}`)).body as Detail;
}

t.test("a restart mid-child re-attaches to the child; no second child is started", async (t) => {
  const dir = t.testdir({ marks: {} });
  const marks = join(dir, "marks");
  const root = join(dir, "root");
  const confPath = join(dir, "flows.yml");
  writeFileSync(confPath, conf(marks));
  let f = await startFloe({ conf: confPath, root });
  const res = await f.req("POST", "/flows/parent/runs", {});
  t.equal(res.status, 201);
  const run = (res.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(() => read(join(marks, "log")).includes("start"), 20_000, "the child's task to start");
  const child = (await get(f, run)).nodes.find((n) => n.id === "call")?.child;
  if (child === undefined) throw new Error("no child on the parent's node");
  await f.kill9();

  f = await startFloe({ conf: confPath, root });
  t.teardown(() => f.kill9());
  // The child's task runs again (a new try of its own run), and the parent waits for that same child.
  await until(() => read(join(marks, "log")).split("\n").filter((l) => l === `start ${child}`).length === 2, 20_000, "the child's task to run again after the restart");
  writeFileSync(join(marks, "release"), "");
  await until(async () => (await get(f, run)).state === "archived", 30_000, "the parent to end");
  const parent = await get(f, run);
  t.equal(parent.result, "good", parent.reason ?? "");
  const call = parent.nodes.find((n) => n.id === "call");
  t.equal(call?.child, child, "the same child");
  t.same(call?.outputs, { GREETING: "hello parent" });
  const runs = (await f.req("GET", "/runs?flow=gated")).body as { runs: { ref: { run: string } }[] };
  t.same(runs.runs.map((r) => r.ref.run), [child], "one child run of the flow, ever");
  t.equal(read(join(marks, "log")).split("\n").filter((l) => l.startsWith("start ")).length, 2, "no task of a second child ran");
  t.same((await get(f, child)).parent, { run, node: "call" });
  const log = (await f.req("GET", `/runs/${run}/nodes/call/log`)).body as { lines: { text: string }[] };
  t.ok(log.lines.some((l) => l.text.startsWith(`re-attached to child run ${child}`)), "the parent says it re-attached");
});

t.test("a restart mid-fan-out of child runs re-attaches each instance to its own child", async (t) => {
  const dir = t.testdir({ marks: {} });
  const marks = join(dir, "marks");
  const root = join(dir, "root");
  const confPath = join(dir, "flows.yml");
  writeFileSync(confPath, conf(marks));
  // Three slots at least: the parent keeps one while its two children run.
  let f = await startFloe({ conf: confPath, root, extra: ["--slots=4"] });
  const res = await f.req("POST", "/flows/fan/runs", {});
  const run = (res.body as { run: { ref: { run: string } } }).run.ref.run;
  type Inst = { index: number; child?: string };
  const instances = async (): Promise<Inst[]> => ((await get(f, run)).nodes.find((n) => n.id === "each") as { instances?: Inst[] }).instances ?? [];
  await until(async () => (await instances()).filter((i) => i.child !== undefined).length === 2 && read(join(marks, "log")).split("\n").filter((l) => l.startsWith("start ")).length === 2, 20_000, "both children's tasks to start");
  const before = (await instances()).map((i) => i.child);
  await f.kill9();

  f = await startFloe({ conf: confPath, root, extra: ["--slots=4"] });
  t.teardown(() => f.kill9());
  await until(() => read(join(marks, "log")).split("\n").filter((l) => l.startsWith("start ")).length === 4, 20_000, "both children's tasks to run again");
  writeFileSync(join(marks, "releasex"), "");
  writeFileSync(join(marks, "releasey"), "");
  writeFileSync(join(marks, "release"), "");
  await until(async () => (await get(f, run)).state === "archived", 30_000, "the fan-out run to end");
  const p = await get(f, run);
  t.equal(p.result, "good", p.reason ?? "");
  t.same((await instances()).map((i) => i.child), before, "each instance kept its child");
  const runs = (await f.req("GET", "/runs?flow=gated")).body as { runs: { ref: { run: string } }[] };
  t.same(runs.runs.map((r) => r.ref.run).sort(), [...before].sort(), "no other child was started");
});
