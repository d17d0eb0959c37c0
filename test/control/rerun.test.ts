/**
 * Re-run with real processes. In a cluster: a re-run from the third of five nodes runs only
 * nodes 3–5 (the tasks' own evidence), on another host than the original run (which is gone
 * by then), with node 2's outputs and artifact from the old run present for node 3. On one host: retry
 * failed runs from the node that failed; a re-run without from runs everything; bad
 * requests are refused with a code.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster } from "../helpers/cluster.js";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

interface Node {
  id: string;
  state: string;
  reason?: string;
  outputs?: Record<string, string>;
}
interface Run {
  ref: { run: string; execHost?: string };
  state: string;
  result?: string;
  rerunOf?: { run: string; from?: string };
  reruns?: { run: string; from?: string }[];
  nodes: Node[];
}

const get = async (p: FloeProcess, id: string): Promise<Run> => (await p.req("GET", `/runs/${id}`)).body as Run;
const ended = (p: FloeProcess, id: string): Promise<void> => until(async () => (await get(p, id)).state === "archived", 60_000, `run ${id} to end`);
const runId = (body: unknown): string => (body as { run: { ref: { run: string } } }).run.ref.run;

t.test("re-run from the third of five nodes, on another host", async (t) => {
  const trail = join(mkdtempSync(join(tmpdir(), "floe-rerun-ev-")), "trail");
  const step = (n: number, extra = "") => `{name: n${n}, type: exec, listen: ${n === 1 ? "trigger.good" : `task.n${n - 1}.good`}, opts: {shell: 'echo "n${n} $FLOE_HOST${extra}" >> ${trail}'}}`;
  const c = await startCluster(t, {
    conf: `
flows:
  - id: five
    triggers: [{name: go, type: data, opts: {form: {fields: [{id: who, prompt: who}]}}}]
    tasks:
      - ${step(1)}
      - {name: n2, type: exec, listen: task.n1.good, opts: {shell: 'echo "n2 $FLOE_HOST" >> ${trail}; echo "made=$FLOE_RUN_ID" >> "$FLOE_OUTPUT"; echo "bytes of $FLOE_RUN_ID" > "$FLOE_ARTIFACTS/made.txt"'}}
      - ${step(3, " got=$made/$FLOE_OUT_N2_MADE who=$who file=$(cat $FLOE_INPUTS/n2/made.txt)")}
      - ${step(4)}
      - ${step(5)}
      - {name: n6, type: exec, listen: task.n5.bad, opts: {shell: 'true'}}
`,
  });
  const h1 = await c.start({ name: "h1" });
  const first = await h1.req("POST", "/flows/five/runs", { values: { who: "ada" } });
  t.equal(first.status, 201, JSON.stringify(first.body));
  const old = runId(first.body);
  await ended(h1, old);
  t.equal((await get(h1, old)).result, "good");
  t.same(evidence(trail), ["n1 h1", "n2 h1", `n3 h1 got=${old}/${old} who=ada file=bytes of ${old}`, "n4 h1", "n5 h1"], "the original run ran every node on h1");

  // The original host goes away; the re-run is asked of, and runs on, another host.
  const h2 = await c.start({ name: "h2" });
  await c.settle(["h1", "h2"]);
  await h1.stop();
  c.hosts.delete("h1");

  for (const [body, status, code] of [
    [{ from: "nope" }, 400, "E_RERUN_FROM_UNKNOWN"],
    [{ from: "go" }, 400, "E_RERUN_FROM_TRIGGER"],
    [{ from: "n6" }, 409, "E_RERUN_FROM_UNREACHED"],
    [{ failed: true }, 409, "E_RERUN_NOTHING_FAILED"],
    [{ from: "n3", extra: 1 }, 400, undefined],
  ] as const) {
    const r = await h2.req("POST", `/runs/${old}/rerun`, body);
    t.equal(r.status, status, `${JSON.stringify(body)} → ${status}`);
    if (code !== undefined) t.match(r.body, { error: { code } });
  }
  t.equal((await h2.req("POST", "/runs/NOSUCHRUN/rerun", {})).status, 404);

  const again = await h2.req("POST", `/runs/${old}/rerun`, { from: "n3" });
  t.equal(again.status, 201, JSON.stringify(again.body));
  const fresh = runId(again.body);
  await ended(h2, fresh);
  const detail = await get(h2, fresh);
  t.equal(detail.result, "good");
  t.equal(detail.ref.execHost, "h2", "ran on another host than the original");
  t.same(detail.rerunOf, { run: old, from: "n3" });
  t.same(evidence(trail).slice(5), [`n3 h2 got=${old}/${old} who=ada file=bytes of ${old}`, "n4 h2", "n5 h2"], "only nodes 3–5 ran, node 2's outputs and artifact (from the cluster's bucket: h1 is gone) and the trigger values there for node 3");
  const n2 = detail.nodes.find((n) => n.id === "n2");
  t.equal(n2?.state, "good");
  t.match(n2?.reason ?? "", /^replayed from run /);
  t.same(n2?.outputs, { made: old }, "node 2's outputs, replayed");
  t.same((await get(h2, old)).reruns, [{ run: fresh, from: "n3" }], "the old run lists its re-run");
});

t.test("retry failed, and a re-run from the start", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "floe-retry-"));
  const trail = join(dir, "trail");
  const fixed = join(dir, "fixed");
  const conf = join(dir, "flows.yml");
  writeFileSync(
    conf,
    `
flows:
  - id: r
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: 'echo a >> ${trail}; echo n=1 >> "$FLOE_OUTPUT"'}}
      - {name: b, type: exec, listen: task.a.good, opts: {shell: 'echo "b $n" >> ${trail}; test -f ${fixed}'}}
      - {name: c, type: exec, listen: task.b.good, opts: {shell: 'echo c >> ${trail}'}}
`,
  );
  const p = await startFloe({ conf, root: join(dir, "root") });
  t.teardown(() => p.kill9());
  const old = runId((await p.req("POST", "/flows/r/runs", {})).body);
  await ended(p, old);
  t.equal((await get(p, old)).result, "bad");
  t.same(evidence(trail), ["a", "b 1"]);
  t.equal((await p.req("POST", `/runs/${old}/rerun`, { from: "c" })).status, 409, "c was never reached");

  writeFileSync(fixed, "");
  const retry = await p.req("POST", `/runs/${old}/rerun`, { failed: true });
  t.equal(retry.status, 201, JSON.stringify(retry.body));
  const fresh = runId(retry.body);
  await ended(p, fresh);
  const d = await get(p, fresh);
  t.equal(d.result, "good");
  t.same(d.rerunOf, { run: old, from: "b" }, "retry failed starts at the first node that ended bad");
  t.same(evidence(trail), ["a", "b 1", "b 1", "c"], "a was not run again; b got its output");

  const whole = await p.req("POST", `/runs/${fresh}/rerun`);
  t.equal(whole.status, 201, JSON.stringify(whole.body));
  const third = runId(whole.body);
  await ended(p, third);
  t.same((await get(p, third)).rerunOf, { run: fresh });
  t.same(evidence(trail).slice(4), ["a", "b 1", "c"], "from the start: every node");
  t.same((await get(p, old)).reruns, [{ run: fresh, from: "b" }]);
  t.ok(existsSync(fixed));
});

t.test("a re-run asked of the host that has the old run, taken by another host", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "floe-rerun-busy-"));
  const trail = join(dir, "trail");
  const c = await startCluster(t, {
    conf: `
flows:
  - id: three
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: 'echo "a $FLOE_HOST" >> ${trail}; echo "k=from-a-$FLOE_RUN_ID" >> "$FLOE_OUTPUT"'}}
      - {name: b, type: exec, listen: task.a.good, opts: {shell: 'echo "b $FLOE_HOST $k" >> ${trail}'}}
  - id: hold
    host-tags: [first]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: wait, type: exec, listen: trigger.good, opts: {shell: 'while [ ! -f ${dir}/free ]; do sleep 0.05; done'}}
`,
  });
  const h1 = await c.start({ name: "h1", slots: 1, tags: ["first"] });
  const old = runId((await h1.req("POST", "/flows/three/runs", {})).body);
  await ended(h1, old);
  // h1 keeps the old run's files but has no free slot: the re-run it adopts goes to h2.
  const h2 = await c.start({ name: "h2", slots: 1 });
  await c.settle(["h1", "h2"]);
  const blocker = runId((await h1.req("POST", "/flows/hold/runs", {})).body);
  await until(async () => (await get(h1, blocker)).state === "active", 30_000, "h1 busy");
  const r = await h1.req("POST", `/runs/${old}/rerun`, { from: "b" });
  t.equal(r.status, 201, JSON.stringify(r.body));
  const fresh = runId(r.body);
  await ended(h1, fresh);
  const d = await get(h1, fresh);
  t.equal(d.result, "good");
  t.equal(d.ref.execHost, "h2", "taken by the host with a free slot");
  t.same(evidence(trail), ["a h1", `b h1 from-a-${old}`, `b h2 from-a-${old}`], "only b ran again, on h2, with a's output from the old run");
  t.same((await get(h2, old)).reruns, [{ run: fresh, from: "b" }], "every host sees the old run's re-runs");
  const early = await h1.req("POST", `/runs/${blocker}/rerun`, {});
  t.equal(early.status, 409, "a run that has not ended is not re-run");
  t.match(early.body, { error: { code: "E_RUN_NOT_ENDED" } });
  writeFileSync(join(dir, "free"), "");
  await ended(h1, blocker);
});
