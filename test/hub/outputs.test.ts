/**
 * Node outputs (`$FLOE_OUTPUT`) reach every later task as FLOE_OUT_<NODE>_<KEY>, past
 * merges, are shown in the node statuses of the API, and survive a restart of the host.
 */
import t from "tap";
import type { NodeStatus } from "../../hub/types.js";
import { nodeStatusOf } from "../../hub/wire-checks.js";
import { ADMIN, startApi } from "../helpers/api.js";
import { startHub, until } from "../helpers/hub.js";

const nodeOf = (nodes: readonly NodeStatus[], id: string): NodeStatus => {
  const n = nodes.find((x) => x.id === id);
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
};

const outLines = async (h: { hub: { readLog(run: string, node: string): Promise<{ lines: readonly { stream: string; text: string }[] }> } }, run: string, node: string, stream = "out"): Promise<string[]> =>
  (await h.hub.readLog(run, node)).lines.filter((l) => l.stream === stream).map((l) => l.text);

t.test("every earlier node's outputs reach later tasks as FLOE_OUT_<NODE>_<KEY>, past a merge; the API shows them", async (t) => {
  const h = await startApi(
    t,
    `
flows:
  - id: outs
    env: [FLOE_OUT_BUILD_VERSION=from-the-flow-env]
    triggers: [{name: go, type: data}]
    tasks:
      - name: build
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "version=1.2.3" >> "$FLOE_OUTPUT"; echo "dir=./dist" >> "$FLOE_OUTPUT"'}
      - name: unit-tests
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "passed=41" >> "$FLOE_OUTPUT"'}
      - {name: both, class: merge, type: all, wait: [task.build.good, task.unit-tests.good]}
      - name: package
        type: exec
        listen: merge.both.good
        opts: {shell: 'echo "v=$FLOE_OUT_BUILD_VERSION dir=$FLOE_OUT_BUILD_DIR passed=$FLOE_OUT_UNIT_TESTS_PASSED"'}
      - name: deploy
        type: exec
        listen: task.package.good
        opts: {shell: 'env | grep ^FLOE_OUT_ | sort'}
      - {name: fin, type: end, listen: task.deploy.good}
`,
  );
  const run = await h.hub.trigger({ flow: "outs" });
  const end = await h.end(run.ref.run);
  t.equal(end.result, "good", end.reason ?? "");
  t.same(await outLines(h, run.ref.run, "package"), ["v=1.2.3 dir=./dist passed=41"], "after the merge: both branches' outputs, as written (./dist not made a path), over the flow env");
  t.same(
    await outLines(h, run.ref.run, "deploy"),
    ["FLOE_OUT_BUILD_DIR=./dist", "FLOE_OUT_BUILD_VERSION=1.2.3", "FLOE_OUT_UNIT_TESTS_PASSED=41"],
    "two nodes further on, every earlier node's outputs, and only those that were written",
  );
  const r = await h.call("GET", `/runs/${run.ref.run}`, { token: ADMIN });
  t.equal(r.status, 200);
  const nodes = (r.json as { nodes: NodeStatus[] }).nodes;
  t.same(nodeOf(nodes, "build").outputs, { version: "1.2.3", dir: "./dist" }, "GET /runs/:id shows a node's outputs");
  t.same(nodeOf(nodes, "unit-tests").outputs, { passed: "41" });
  t.equal(nodeOf(nodes, "package").outputs, undefined, "a task that wrote none has no outputs field");
  t.equal(nodeOf(nodes, "both").outputs, undefined, "nor has a merge");
});

t.test("a task that starts before the writer ended does not see its outputs; names two outputs share are reported", async (t) => {
  const h = await startHub(
    t,
    `
flows:
  - id: clash
    triggers: [{name: go, type: data}]
    tasks:
      - name: a
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "b_c=from-a" >> "$FLOE_OUTPUT"; echo "early=[$FLOE_OUT_SLOW_X]"; touch "$FLOEWS/a-started"'}
      - name: a-b
        type: exec
        listen: task.a.good
        opts: {shell: 'echo "c=from-a-b" >> "$FLOE_OUTPUT"'}
      - name: slow
        type: exec
        listen: trigger.good
        opts: {shell: 'while [ ! -f "$FLOEWS/a-started" ]; do sleep 0.02; done; echo "x=late" >> "$FLOE_OUTPUT"'}
      - {name: both, class: merge, type: all, wait: [task.a-b.good, task.slow.good]}
      - name: read
        type: exec
        listen: merge.both.good
        opts: {shell: 'echo "got=$FLOE_OUT_A_B_C x=$FLOE_OUT_SLOW_X"'}
`,
  );
  const run = await h.hub.trigger({ flow: "clash" });
  const end = await h.end(run.ref.run);
  t.equal(end.result, "good", end.reason ?? "");
  t.same(await outLines(h, run.ref.run, "a"), ["early=[]"], "a started before slow ended (slow waits for it): not slow's outputs");
  t.same(await outLines(h, run.ref.run, "read"), ["got=from-a-b x=late"], "after both: the later node in the flow's order wins a shared name");
  t.match(await outLines(h, run.ref.run, "read", "sys"), ["FLOE_OUT_A_B_C is both a's output b_c and a-b's output c; it holds a-b's"], "and the task's log says so");
});

t.test("outputs survive a restart of the host: status and later tasks", async (t) => {
  const conf = `
flows:
  - id: gated
    triggers: [{name: go, type: data}]
    tasks:
      - name: make
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "artifact=app-7.tgz" >> "$FLOE_OUTPUT"'}
      - name: approve
        type: data
        listen: task.make.good
        opts: {form: {title: Ship it?, fields: [{id: who, prompt: Who}]}}
      - name: ship
        type: exec
        listen: task.approve.good
        opts: {shell: 'echo "shipping $FLOE_OUT_MAKE_ARTIFACT"'}
      - {name: fin, type: end, listen: task.ship.good}
`;
  const first = await startHub(t, conf);
  const run = (await first.hub.trigger({ flow: "gated" })).ref.run;
  await until(async () => nodeOf((await first.hub.getRun(run)).nodes, "approve").enabled === true, 20_000, "the form to open");
  await first.hub.stop(0);
  const again = await startHub(t, conf, { root: first.root });
  await until(async () => nodeOf((await again.hub.getRun(run)).nodes, "approve").enabled === true, 20_000, "the form to open again");
  t.same(nodeOf((await again.hub.getRun(run)).nodes, "make").outputs, { artifact: "app-7.tgz" }, "the status, read back from the node's status lines");
  again.hub.postData(run, "approve", { who: "Ada" });
  const end = await again.end(run);
  t.equal(end.result, "good", end.reason ?? "");
  t.same(await outLines(again, run, "ship"), ["shipping app-7.tgz"], "a task started after the restart sees them");
  t.same(nodeOf((await again.hub.getRun(run)).nodes, "make").outputs, { artifact: "app-7.tgz" }, "and the archived run shows them");
});

t.test("a node status from another host may carry outputs, checked as a map of strings", async (t) => {
  const base = { id: "b", name: "b", class: "task", type: "exec", state: "good", attempts: 1, runAttempt: 1, logLines: 0 };
  t.same(nodeStatusOf({ ...base, outputs: { v: "1" } }, "a node status").outputs, { v: "1" });
  t.equal(nodeStatusOf(base, "a node status").outputs, undefined, "optional: older hosts send none");
  t.throws(() => nodeStatusOf({ ...base, outputs: { v: 1 } }, "a node status"), { code: "E_INTERNAL", message: /outputs: not a map of strings/ });
});
