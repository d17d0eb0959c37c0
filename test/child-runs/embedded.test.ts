/**
 * Child runs on one embedded host (real processes, real files): values and passed values go
 * in, the child's outputs come out as the parent task's; a bad child makes the task bad with
 * a reason naming it; cancelling the parent, or the task's timeout, cancels the child and
 * kills its processes; nesting deeper than the bound is refused with a clear reason.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { MAX_CHILD_DEPTH } from "../../hub/child-runs.js";
import { LocalClusterState } from "../../hub/cluster-state.js";
import type { NodeStatus, RunDetail } from "../../hub/types.js";
import { startHub, until } from "../helpers/hub.js";

const read = (f: string): string => (existsSync(f) ? readFileSync(f, "utf8") : "");

function conf(marks: string): string {
  // A chain f0 → f1 → … one flow longer than the nesting bound allows.
  const chain = Array.from({ length: MAX_CHILD_DEPTH + 2 }, (_, i) =>
    i <= MAX_CHILD_DEPTH
      ? `  - id: f${i}\n    tasks:\n      - {id: down, type: flow, listen: trigger.good, opts: {flow: f${i + 1}}}\n`
      : `  - id: f${i}\n    tasks:\n      - {id: leaf, type: exec, listen: trigger.good, opts: {shell: 'echo leaf >> ${marks}/leaf'}}\n`,
  ).join("");
  return `
flows:
  - id: pipeline
    triggers: [{id: go, type: data}]
    tasks:
      - id: build
        type: exec
        listen: trigger.good
        opts: {shell: 'echo VERSION=1.2.3 >> $FLOE_OUTPUT'}
      - id: deploy
        type: flow
        listen: task.build.good
        opts:
          flow: deploy
          values: {TARGET: prod, REPLICAS: 3}
          pass: [FLOE_OUT_BUILD_VERSION]
      - id: show
        type: exec
        listen: task.deploy.good
        opts: {shell: 'echo "$URL $DIGEST" > ${marks}/parent-saw'}
      - {id: done, type: end, listen: task.show.good}
  - id: deploy
    triggers: [{id: go, type: data}]
    tasks:
      - id: push
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "$TARGET $REPLICAS $FLOE_OUT_BUILD_VERSION" > ${marks}/child-got-$FLOE_RUN_ID; echo URL=https://$TARGET.example >> $FLOE_OUTPUT; echo DIGEST=first >> $FLOE_OUTPUT'}
      - id: verify
        type: exec
        listen: task.push.good
        opts: {shell: 'echo DIGEST=second >> $FLOE_OUTPUT'}
      - {id: done, type: end, listen: task.verify.good}
  - id: calls-broken
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: broken}}
  - id: bad-pass
    tasks:
      - {id: no-such-value, type: flow, listen: trigger.good, opts: {flow: with-form, pass: [NOPE]}}
  - id: bad-form
    tasks:
      - {id: form-unmet, type: flow, listen: trigger.good, opts: {flow: with-form, values: {OTHER: x}}}
  - id: with-form
    triggers:
      - id: go
        type: data
        opts: {form: {fields: [{id: TARGET, prompt: Target, type: string, required: true}, {id: OTHER, prompt: Other, type: string}]}}
    tasks:
      - {id: never, type: exec, listen: trigger.good, opts: {shell: 'echo never >> ${marks}/with-form'}}
  - id: art-parent
    triggers: [{id: go, type: data}]
    tasks:
      - {id: make, type: exec, listen: trigger.good, opts: {shell: 'head -c 200000 /dev/urandom > $FLOE_ARTIFACTS/data.bin; echo other > $FLOE_ARTIFACTS/other.txt; sha256sum < $FLOE_ARTIFACTS/data.bin | cut -d" " -f1 > ${marks}/made'}}
      - {id: call, type: flow, listen: task.make.good, opts: {flow: art-child, artifacts: [make/data.bin]}}
      - {id: use, type: exec, listen: task.call.good, opts: {shell: 'cp $FLOE_INPUTS/call/report.txt ${marks}/report'}}
  - id: art-missing
    triggers: [{id: go, type: data}]
    tasks:
      - {id: make, type: exec, listen: trigger.good, opts: {shell: 'echo x > $FLOE_ARTIFACTS/one.txt'}}
      - {id: call, type: flow, listen: task.make.good, opts: {flow: art-child, artifacts: [make/two.txt]}}
  - id: art-no-trigger
    triggers: [{id: go, type: data}]
    tasks:
      - {id: make, type: exec, listen: trigger.good, opts: {shell: 'echo x > $FLOE_ARTIFACTS/one.txt'}}
      - {id: call, type: flow, listen: task.make.good, opts: {flow: broken, artifacts: [make]}}
  - id: art-child
    triggers: [{id: go, type: data}]
    tasks:
      - {id: check, type: exec, listen: trigger.good, opts: {shell: 'ls $FLOE_INPUTS/go > ${marks}/child-saw; sha256sum < $FLOE_INPUTS/go/data.bin | cut -d" " -f1 > $FLOE_ARTIFACTS/report.txt'}}
  - id: art-fan
    triggers: [{id: go, type: data}]
    tasks:
      - {id: split, type: exec, listen: trigger.good, opts: {shell: 'for c in a b c; do echo "part $c" > $FLOE_ARTIFACTS/$c.txt; done'}}
      - {id: each, type: flow, listen: task.split.good, for-each: artifacts, opts: {flow: art-item}}
  - id: art-item
    triggers: [{id: go, type: data}]
    tasks:
      - {id: read, type: exec, listen: trigger.good, opts: {shell: 'echo "$item:$(ls $FLOE_INPUTS/go | tr "\\n" " "):$(cat $FLOE_INPUTS/go/$item)" >> ${marks}/art-items'}}
  - id: calls-broken-twice
    tasks:
      - {id: call, type: flow, listen: trigger.good, retries: {max: 1, backoff: 100ms}, opts: {flow: broken}}
  - id: broken
    tasks:
      - {id: fail, type: exec, listen: trigger.good, opts: {shell: 'echo oops; exit 3'}}
  - id: calls-slow
    triggers: [{id: go, type: data}]
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: slow}}
  - id: calls-slow-with-timeout
    tasks:
      - {id: call, type: flow, listen: trigger.good, timeout: 1s, opts: {flow: slow}}
  - id: calls-slow-run-timeout
    timeout: 1s
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: slow}}
  - id: calls-nowhere
    triggers: [{id: go, type: data}]
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: nowhere}}
  - id: fan
    triggers: [{id: go, type: data}]
    tasks:
      - {id: each, type: flow, listen: trigger.good, for-each: [alpha, beta, gamma], parallel: 2, opts: {flow: one-item, values: {MODE: fast}}}
  - id: one-item
    tasks:
      - id: work
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "$(date +%s%N) start $item" >> ${marks}/items; sleep 0.3; echo "out_$item=$MODE-$item" >> $FLOE_OUTPUT; echo "$(date +%s%N) end $item" >> ${marks}/items'}
  - id: nowhere
    host-tags: [no-such-host]
    tasks:
      - {id: never, type: exec, listen: trigger.good, opts: {shell: 'echo never >> ${marks}/nowhere'}}
  - id: slow
    tasks:
      - id: wait
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "start $FLOE_RUN_ID" >> ${marks}/slow; sleep 30; echo "end $FLOE_RUN_ID" >> ${marks}/slow'}
${chain}`;
}

function node(d: RunDetail, id: string): NodeStatus {
  const n = d.nodes.find((x) => x.id === id);
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
}

t.test("values and passed values in, the child's outputs out (later tasks winning), parent and child linked", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks));
  const run = (await h.hub.trigger({ flow: "pipeline" })).ref.run;
  const end = await h.end(run);
  t.equal(end.result, "good", end.reason ?? "");
  const parent = await h.hub.getRun(run);
  const deploy = node(parent, "deploy");
  t.equal(deploy.state, "good");
  const child = deploy.child;
  if (child === undefined) throw new Error("the flow task names no child run");
  t.same(deploy.outputs, { URL: "https://prod.example", DIGEST: "second" }, "the child's outputs, later tasks winning");
  const c = await h.hub.getRun(child);
  t.equal(c.ref.flow, "deploy");
  t.equal(c.result, "good");
  t.same(c.parent, { run, node: "deploy" }, "the child links to its parent");
  t.match(c.trigger.values, { TARGET: "prod", REPLICAS: "3", FLOE_OUT_BUILD_VERSION: "1.2.3" });
  t.equal(read(join(marks, `child-got-${child}`)).trim(), "prod 3 1.2.3", "the child's task saw the values");
  t.equal(read(join(marks, "parent-saw")).trim(), "https://prod.example second", "the parent's next task saw the child's outputs");
  t.ok((c.startedAt ?? 0) >= (deploy.startedAt ?? Infinity) && (c.endedAt ?? Infinity) <= (deploy.endedAt ?? 0), "the task ran while its child ran");
  t.equal(h.hub.listRuns({ flow: "deploy" }).length, 1, "one child run");
});

t.test("a bad child makes the task bad, with a reason naming the child and its result", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks));
  const run = (await h.hub.trigger({ flow: "calls-broken", anyTrigger: true })).ref.run;
  const end = await h.end(run);
  t.equal(end.result, "bad");
  const call = node(await h.hub.getRun(run), "call");
  t.equal(call.state, "bad");
  t.equal(call.exitCode, 1);
  t.equal(call.reason, `child run ${call.child} of flow broken ended bad: task.fail.bad has no listener`);
  const c = await h.hub.getRun(call.child as string);
  t.equal(c.result, "bad");
  t.equal(node(c, "fail").exitCode, 3);
});

t.test("a pass name the task's environment lacks, and values the child's form refuses, fail the task", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks));
  const one = (await h.hub.trigger({ flow: "bad-pass", anyTrigger: true })).ref.run;
  const two = (await h.hub.trigger({ flow: "bad-form", anyTrigger: true })).ref.run;
  t.equal((await h.end(one)).result, "bad");
  const endTwo = await h.end(two);
  t.equal(endTwo.result, "bad");
  const missing = node(await h.hub.getRun(one), "no-such-value");
  t.equal(missing.tag, "task.no-such-value.error");
  t.equal(missing.reason, "opts.pass names NOPE, which the task's environment does not have");
  const unmet = node(await h.hub.getRun(two), "form-unmet");
  t.equal(unmet.tag, "task.form-unmet.error");
  t.match(unmet.reason, /^could not start a run of flow with-form: missing values for TARGET/);
  t.equal(h.hub.listRuns({ flow: "with-form" }).length, 0, "no child was adopted");
  t.equal(read(join(marks, "with-form")), "");
});

t.test("artifacts handed over: the child finds them under its trigger's inputs, and its own become the task's", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks));
  const run = (await h.hub.trigger({ flow: "art-parent" })).ref.run;
  const end = await h.end(run);
  t.equal(end.result, "good", end.reason ?? "");
  const made = read(join(marks, "made")).trim();
  t.match(made, /^[0-9a-f]{64}$/);
  t.equal(read(join(marks, "child-saw")).trim(), "data.bin", "only the named artifact, under $FLOE_INPUTS/<trigger>/");
  t.equal(read(join(marks, "report")).trim(), made, "the child read the same bytes, and the parent's next task read the child's artifact");
  const call = node(await h.hub.getRun(run), "call");
  t.same(call.artifacts?.map((a) => a.name), ["report.txt"], "the child's artifacts are the task's");
  const child = await h.hub.getRun(call.child as string);
  t.same(child.artifacts?.map((a) => a.name), ["report.txt"]);
  t.same(node(child, "check").artifacts, call.artifacts, "the same objects (name, size, SHA-256)");

  const bad = (await h.hub.trigger({ flow: "art-missing" })).ref.run;
  t.equal((await h.end(bad)).result, "bad");
  const refused = node(await h.hub.getRun(bad), "call");
  t.equal(refused.reason, `opts.artifacts names make/two.txt, which no ended node left (node "make" has one.txt)`);
  t.equal(refused.child, undefined, "no child was started");

  const nowhere = (await h.hub.trigger({ flow: "art-no-trigger" })).ref.run;
  t.equal((await h.end(nowhere)).result, "bad");
  t.equal(node(await h.hub.getRun(nowhere), "call").reason, "flow broken has no trigger, so no $FLOE_INPUTS/<trigger>/ to find the handed-over artifacts in");
});

t.test("for-each: artifacts on a flow task: each instance's child gets its item's artifact", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks), { slots: 8 });
  const run = (await h.hub.trigger({ flow: "art-fan" })).ref.run;
  const end = await h.end(run);
  t.equal(end.result, "good", end.reason ?? "");
  t.same(read(join(marks, "art-items")).trim().split("\n").sort(), ["a.txt:a.txt :part a", "b.txt:b.txt :part b", "c.txt:c.txt :part c"], "each child has its own item, and only it");
  const each = node(await h.hub.getRun(run), "each");
  t.equal(new Set(each.instances?.map((i) => i.child)).size, 3);
});

t.test("retries: each try of the task starts a child of its own", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks));
  const run = (await h.hub.trigger({ flow: "calls-broken-twice", anyTrigger: true })).ref.run;
  t.equal((await h.end(run)).result, "bad");
  const call = node(await h.hub.getRun(run), "call");
  t.equal(call.attempts, 2);
  const kids = h.hub.listRuns({ flow: "broken" });
  t.equal(kids.length, 2, "two children, one per try");
  t.ok(kids.every((k) => k.result === "bad" && k.parent?.run === run));
  t.equal(call.child, kids.map((k) => k.ref.run).sort().at(-1), "the node shows the last try's child");
});

t.test("cancelling the parent cancels the child and kills its processes", async (t) => {
  const marks = t.testdir({});
  const state = new LocalClusterState();
  const h = await startHub(t, conf(marks), { state });
  const run = (await h.hub.trigger({ flow: "calls-slow" })).ref.run;
  await until(() => read(join(marks, "slow")).includes("start"), 20_000, "the child's task to start");
  const child = node(await h.hub.getRun(run), "call").child as string;
  t.same(JSON.parse((await state.getValue(`children-${run}`)) ?? "{}"), { call: child }, "the shared state knows the parent's child (for a requeued attempt)");
  t.ok(read(join(marks, "slow")).includes(`start ${child}`), "the child's task runs in the child run");
  const cancelled = await h.hub.cancel(run, "tester");
  t.equal(cancelled.result, "cancelled");
  const c = await h.end(child, 20_000);
  t.equal(c.result, "cancelled");
  t.match(c.reason, `cancelled by parent run ${run}`);
  t.notOk(read(join(marks, "slow")).includes("end"), "the child's task was killed, not left to finish");
  t.equal(node(await h.hub.getRun(run), "call").state, "cancelled");
  await until(async () => (await state.getValue(`children-${run}`)) === undefined, 10_000, "the parent's map of children to be dropped");
});

t.test("the task's timeout cancels the child and ends the task bad", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks));
  const run = (await h.hub.trigger({ flow: "calls-slow-with-timeout", anyTrigger: true })).ref.run;
  const end = await h.end(run, 30_000);
  t.equal(end.result, "bad");
  const call = node(await h.hub.getRun(run), "call");
  t.equal(call.state, "bad");
  t.match(call.reason, /^timed out after 1s; child run \S+ cancelled$/);
  const c = await h.end(call.child as string, 20_000);
  t.equal(c.result, "cancelled");
});

t.test("the run's timeout cancels the child", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks));
  const run = (await h.hub.trigger({ flow: "calls-slow-run-timeout", anyTrigger: true })).ref.run;
  const end = await h.end(run, 30_000);
  t.equal(end.result, "bad");
  t.equal(end.reason, "run timed out after 1s");
  const call = node(await h.hub.getRun(run), "call");
  const c = await h.end(call.child as string, 20_000);
  t.equal(c.result, "cancelled");
  t.match(c.reason, `cancelled by parent run ${run} (run ended: run timed out after 1s)`);
  t.notOk(read(join(marks, "slow")).includes("end"), "the child's task was killed");
});

t.test("a child still pending (no host can take it) is cancelled with its parent", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks));
  const run = (await h.hub.trigger({ flow: "calls-nowhere" })).ref.run;
  let child: string | undefined;
  // The node names its child as soon as the id is journalled, a moment before the child is adopted.
  await until(async () => (child = node(await h.hub.getRun(run), "call").child) !== undefined && h.hub.listRuns({ flow: "nowhere" }).length === 1, 20_000, "the child to be adopted");
  const pending = await h.hub.getRun(child as string);
  t.equal(pending.state, "pending");
  t.match(pending.waiting, /no-such-host/, "it waits for a host with its tags");
  await h.hub.cancel(run, "tester");
  const c = await h.end(child as string, 20_000);
  t.equal(c.result, "cancelled");
  t.equal(read(join(marks, "nowhere")), "", "it never ran");
});

t.test("for-each on a flow task: a child run per item, at most parallel at once, outputs merged", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks), { slots: 8 });
  const run = (await h.hub.trigger({ flow: "fan" })).ref.run;
  const end = await h.end(run, 30_000);
  t.equal(end.result, "good", end.reason ?? "");
  const each = node(await h.hub.getRun(run), "each");
  t.same(each.outputs, { out_alpha: "fast-alpha", out_beta: "fast-beta", out_gamma: "fast-gamma" });
  const instances = each.instances ?? [];
  t.same(instances.map((i) => [i.name, i.state]), [["alpha", "good"], ["beta", "good"], ["gamma", "good"]]);
  const kids = instances.map((i) => i.child);
  t.equal(new Set(kids).size, 3, "a child run per instance");
  for (const [index, i] of instances.entries()) {
    const c = await h.hub.getRun(i.child as string);
    t.same(c.parent, { run, node: "each", instance: index });
    t.match(c.trigger.values, { item: i.name, MODE: "fast" });
  }
  // At most two at once, from the tasks' own stamps.
  let running = 0;
  let most = 0;
  const stamps = read(join(marks, "items")).trim().split("\n").map((l) => l.split(" ")).sort((a, b) => (BigInt(a[0] ?? 0) < BigInt(b[0] ?? 0) ? -1 : 1));
  for (const [, what] of stamps) {
    running += what === "start" ? 1 : -1;
    most = Math.max(most, running);
  }
  t.equal(stamps.length, 6);
  t.equal(most, 2, "parallel: 2 held across the child runs");
});

t.test(`child runs nest at most ${MAX_CHILD_DEPTH} deep`, async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks), { slots: MAX_CHILD_DEPTH + 4 });
  const root = (await h.hub.trigger({ flow: "f0", anyTrigger: true })).ref.run;
  t.equal((await h.end(root, 60_000)).result, "bad");
  // Walk down the chain: f0 at depth 0 … f8 at depth 8, whose task is refused.
  let at = await h.hub.getRun(root);
  for (let depth = 0; depth < MAX_CHILD_DEPTH; depth++) {
    t.equal(at.ref.flow, `f${depth}`);
    const down = node(at, "down");
    t.equal(down.state, "bad");
    at = await h.hub.getRun(down.child as string);
  }
  t.equal(at.ref.flow, `f${MAX_CHILD_DEPTH}`);
  const refused = node(at, "down");
  t.equal(refused.state, "bad");
  t.equal(refused.child, undefined, "no child was started past the bound");
  t.match(refused.reason, `child runs nest at most ${MAX_CHILD_DEPTH} deep: a run of flow f${MAX_CHILD_DEPTH + 1} started here would be at depth ${MAX_CHILD_DEPTH + 1}`);
  t.equal(h.hub.listRuns({ flow: `f${MAX_CHILD_DEPTH + 1}` }).length, 0);
  t.equal(read(join(marks, "leaf")), "", "the flow past the bound never ran");
});
