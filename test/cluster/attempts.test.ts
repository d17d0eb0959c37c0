/**
 * A run requeued after its host was lost, read through every host of a real cluster: each
 * run attempt's log is kept apart (its own lines, numbered from 1, marked with their
 * attempt), the latest by default, an earlier one by ?attempt=N, whether the host reading
 * holds the run (its file, and the history for the attempt before) or not (the history);
 * and the run's nodes count their tries within the run's current attempt.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster, type Cluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

type Line = { attempt?: number; seq: number; text: string; stream: string };
type LogAnswer = { lines: Line[]; attempt?: number; attempts?: number[]; live?: boolean };
type Node = { id: string; state: string; attempts: number; runAttempt?: number };
type Detail = { state: string; attempt: number; result?: string; ref: { execHost?: string }; nodes: Node[] };

function conf(dir: string): string {
  const ev = join(dir, "evidence.log");
  // Three lines naming the host and attempt, then a wait for the release file: the test kills the host meanwhile.
  const long = `for i in 1 2 3; do echo "epoch $i on $HOST_NAME (attempt $FLOE_ATTEMPT)"; done; echo "long-start $FLOE_RUN_ID $HOST_NAME" >> ${ev}; while [ ! -f ${dir}/release ]; do sleep 0.05; done; echo "done on $HOST_NAME"`;
  return `
flows:
  - id: requeued
    host-tags: [runner]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: long, type: exec, listen: trigger.good, opts: {shell: '${long}'}}
`;
}

async function log(c: Cluster, via: string, run: string, query = ""): Promise<LogAnswer> {
  const r = await c.host(via).req("GET", `/runs/${run}/nodes/long/log${query}`);
  if (r.status !== 200) throw new Error(`log via ${via}${query}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as LogAnswer;
}

async function detail(c: Cluster, via: string, run: string): Promise<Detail> {
  return (await c.host(via).req("GET", `/runs/${run}`)).body as Detail;
}

/** What the task printed (floe's own lines, such as the command, left out). */
const texts = (a: LogAnswer): string[] => a.lines.filter((l) => l.stream === "out").map((l) => l.text);
/** Each line's attempt and number. */
const numbered = (a: LogAnswer): [number | undefined, number][] => a.lines.map((l) => [l.attempt, l.seq]);
const from1 = (attempt: number, n: number): [number, number][] => Array.from({ length: n }, (_, i) => [attempt, i + 1]);

t.test("a requeued run's log through every host: one attempt at a time, the latest by default", async (t) => {
  const dir = t.testdir({});
  const ev = join(dir, "evidence.log");
  const c = await startCluster(t, { conf: conf(dir) });
  // h3 runs nothing of this flow: it reads the run from the cluster only.
  await Promise.all([c.start({ name: "h1", tags: ["runner"] }), c.start({ name: "h2", tags: ["runner"] }), c.start({ name: "h3" })]);
  await c.settle(["h1", "h2", "h3"]);
  const r = await c.host("h3").req("POST", "/flows/requeued/runs", {});
  t.equal(r.status, 201);
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;

  await until(() => evidence(ev).some((l) => l.startsWith(`long-start ${run} `)), 30_000, "the long task to start");
  const victim = evidence(ev).find((l) => l.startsWith(`long-start ${run} `))?.split(" ")[2] ?? "";
  const survivor = victim === "h1" ? "h2" : "h1";
  // Attempt 1's lines are in the history before its host dies.
  await until(async () => texts(await log(c, "h3", run)).length === 3, 20_000, "attempt 1's lines through h3");
  await c.kill9(victim);
  await until(() => evidence(ev).some((l) => l === `long-start ${run} ${survivor}`), 30_000, "attempt 2 to start on the survivor");
  await until(async () => (await detail(c, "h3", run)).attempt === 2, 20_000, "the index to say attempt 2");
  const first = [1, 2, 3].map((i) => `epoch ${i} on ${victim} (attempt 1)`);
  const second = [1, 2, 3].map((i) => `epoch ${i} on ${survivor} (attempt 2)`);
  await until(async () => texts(await log(c, "h3", run)).length >= 3, 20_000, "attempt 2's lines through h3");

  for (const via of [survivor, "h3"]) {
    const latest = await log(c, via, run);
    t.same(texts(latest), second, `through ${via}: the latest attempt's lines only, by default`);
    t.same(numbered(latest), from1(2, latest.lines.length), `through ${via}: marked attempt 2, numbered from 1`);
    t.equal(latest.attempt, 2, `through ${via}: the answer says which attempt`);
    t.same(latest.attempts, [1, 2], `through ${via}: and which attempts exist`);
    t.equal(latest.live, true, `through ${via}: the latest attempt is live`);
    const earlier = await log(c, via, run, "?attempt=1");
    t.same(texts(earlier), first, `through ${via}: ?attempt=1 gives attempt 1's lines only`);
    t.same(numbered(earlier), from1(1, earlier.lines.length), `through ${via}: attempt 1 numbered from 1`);
    t.equal(earlier.live, false, `through ${via}: an earlier attempt is over`);
    const third = earlier.lines.find((l) => l.text === first[2])?.seq ?? 0;
    t.same(texts(await log(c, via, run, `?attempt=1&after=${third - 1}`)), [first[2]], `through ${via}: after within attempt 1`);
    t.equal((await c.host(via).req("GET", `/runs/${run}/nodes/long/log?attempt=3`)).status, 404, `through ${via}: an attempt the run never had is not found`);
  }

  // Tries are counted within the run's current attempt, the same through every host.
  await until(async () => (await detail(c, "h3", run)).nodes.find((n) => n.id === "long")?.runAttempt === 2, 20_000, "h3 to see attempt 2's node");
  for (const via of [survivor, "h3"]) {
    const d = await detail(c, via, run);
    t.match(d.nodes.find((n) => n.id === "long"), { state: "running", attempts: 1, runAttempt: 2 }, `through ${via}: the node's first try in run attempt 2`);
  }

  writeFileSync(join(dir, "release"), "");
  await until(async () => (await detail(c, "h3", run)).state === "archived", 30_000, "the run to end");
  t.equal((await detail(c, "h3", run)).result, "good");
  for (const via of [survivor, "h3"]) {
    await until(async () => texts(await log(c, via, run)).length === 4, 20_000, `the last line through ${via}`);
    t.same(texts(await log(c, via, run)), [...second, `done on ${survivor}`], `through ${via}: ended, attempt 2's lines`);
    t.same(texts(await log(c, via, run, "?attempt=1")), first, `through ${via}: ended, attempt 1's lines`);
  }
});
