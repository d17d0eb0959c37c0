/** floe's hub scenarios (reference §8 TestHubEvents, TestHubData) and the end rules, with real processes. */
import { readFileSync } from "node:fs";
import t from "tap";
import { FloeError } from "../../hub/errors.js";
import type { NodeStatus, RunEvent } from "../../hub/types.js";
import { makeRepo } from "../helpers/git.js";
import { startHub, until } from "../helpers/hub.js";
import { refConfig } from "../helpers/paths.js";

const nodeOf = (nodes: readonly NodeStatus[], id: string): NodeStatus => {
  const n = nodes.find((x) => x.id === id);
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
};

t.test("TestHubEvents: checkout, build, two tests, a merge, the end", async (t) => {
  const dir = t.testdir({ ws: {} });
  const repo = makeRepo(dir, { "README.md": "hello\n" });
  // floe's test used a fake checkout hook; ours clones a real local repository.
  const text = readFileSync(refConfig("test_hub_hub_test_in.yml"), "utf8").replace("git@github.com:floeit/floe-test.git", repo.url).replace('"%tmp/floe"', `${dir}/ws`);
  const h = await startHub(t, text);
  const run = await h.hub.trigger({ flow: "build-project" });
  t.equal(run.state, "pending");
  const end = await h.end(run.ref.run);
  t.equal(end.result, "good", end.reason ?? "");
  t.match(end.reason, /end node "complete" reached by merge\.merge-tests\.good/);
  t.ok((await h.hub.readLog(run.ref.run, "checkout")).lines.some((l) => /HEAD is now [0-9a-f]{40}/.test(l.text)), "a real clone");
  const detail = await h.hub.getRun(run.ref.run);
  for (const id of ["checkout", "build", "test1", "test2", "merge-tests"]) t.equal(nodeOf(detail.nodes, id).state, "good", id);
  const merges = h.events.filter((e): e is Extract<RunEvent, { type: "node" }> => e.type === "node" && e.node.id === "merge-tests" && e.node.state === "good");
  t.equal(merges.length, 1, "the merge fired exactly once");
  const logs = h.events.filter((e) => e.type === "log").length;
  t.ok(logs >= 18, `at least 18 output lines (${logs})`);
  const states = h.events.filter((e): e is Extract<RunEvent, { type: "run" }> => e.type === "run").map((e) => e.summary.state);
  t.same([...new Set(states)], ["pending", "active", "archived"], "pending → active → archived");
  const test1 = await h.hub.readLog(run.ref.run, "test1");
  t.ok(test1.lines.some((l) => l.text === "test1"), "test1 printed its line");
});

t.test("TestHubData: a data node opens after its event, accumulates values, and completes", async (t) => {
  const text = readFileSync(refConfig("test_hub_hub_test_inData.yml"), "utf8").replace('"%tmp/floe"', t.testdir({}));
  const h = await startHub(t, text);
  const run = await h.hub.trigger({ flow: "build-project", values: { url: "blah.blah" } });
  const id = run.ref.run;
  await until(async () => (await h.hub.getRun(id)).nodes.some((n) => n.id === "sign-off" && n.enabled === true), 20_000, "sign-off to open");
  t.throws(() => h.hub.postData(id, "build", { x: "1" }), { code: "E_NOT_A_DATA_NODE" });
  t.throws(() => h.hub.postData(id, "sign-off", { nope: "1" }), { code: "E_FORM_INVALID" });
  const partial = h.hub.postData(id, "sign-off", { tests_passed: "true" });
  t.equal(partial.enabled, true, "still open after a partial post");
  t.same(partial.values, { tests_passed: "true" });
  h.hub.postData(id, "sign-off", { to_hash: "blhahaha" });
  const end = await h.end(id);
  t.equal(end.result, "good", end.reason ?? "");
  const d = await h.hub.getRun(id);
  t.equal(nodeOf(d.nodes, "sign-off").state, "good");
  t.equal(nodeOf(d.nodes, "test1").state, "good");
  t.throws(() => h.hub.postData(id, "sign-off", { to_hash: "x" }), { code: "E_RUN_ENDED" });
});

t.test("data before its event is refused; a rejected form ends the run bad", async (t) => {
  const h = await startHub(
    t,
    `
flows:
  - id: approve
    triggers: [{name: start, type: data}]
    tasks:
      - {name: wait, type: timer, listen: trigger.good, opts: {duration: 300ms}}
      - name: ok
        type: data
        listen: task.wait.good
        opts: {form: {title: Approve?, fields: [{id: why, prompt: Why}]}}
      - {name: done, type: end, listen: task.ok.good}
`,
  );
  const run = await h.hub.trigger({ flow: "approve" });
  await until(async () => (await h.hub.getRun(run.ref.run)).state === "active", 20_000, "active");
  t.throws(() => h.hub.postData(run.ref.run, "ok", { why: "early" }), { code: "E_DATA_NOT_ENABLED" });
  await until(async () => nodeOf((await h.hub.getRun(run.ref.run)).nodes, "ok").enabled === true, 20_000, "form open");
  h.hub.postData(run.ref.run, "ok", {}, "not today");
  const end = await h.end(run.ref.run);
  t.equal(end.result, "bad");
  t.match(end.reason, /task\.ok\.bad has no listener/);
  t.match(nodeOf((await h.hub.getRun(run.ref.run)).nodes, "ok").reason, /rejected: not today/);
});

t.test("end rules", async (t) => {
  const h = await startHub(
    t,
    `
flows:
  - id: bad-unhandled
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: "exit 3"}}
  - id: dangling-good-waits
    triggers: [{name: go, type: data}]
    tasks:
      - {name: quick, type: exec, listen: trigger.good, opts: {cmd: "true"}}
      - {name: slow, type: exec, listen: trigger.good, opts: {shell: "sleep 0.5; echo slow-done"}}
  - id: end-on-bad
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "false"}}
      - {name: fin, type: end, listen: task.a.bad}
  - id: skips
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "false"}}
      - {name: fin, type: end, listen: task.a.bad}
      - {name: deploy, type: exec, listen: task.a.good, opts: {cmd: "true"}}
      - {name: tests done, class: merge, type: all, wait: [task.a.good, task.deploy.good]}
      - {name: ok, type: end, listen: merge.tests-done.good}
  - id: handled-failure
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "false"}}
      - {name: notify, type: exec, listen: task.a.bad, opts: {shell: "echo notified"}}
  - id: use-status
    triggers: [{name: go, type: data}]
    tasks:
      - {name: st, type: exec, listen: trigger.good, use-status: true, good: [0, 3], opts: {shell: "exit 3"}}
      - {name: three, type: end, listen: task.st.3}
  - id: ignore-fail
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, ignore-fail: true, opts: {cmd: "no-such-command-floe"}}
      - {name: fin, type: end, listen: task.a.good}
  - id: error-tag
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "no-such-command-floe"}}
      - {name: fin, type: end, listen: task.a.error}
  - id: merge-any
    triggers: [{name: go, type: data}]
    tasks:
      - {name: fast, type: exec, listen: trigger.good, opts: {cmd: "true"}}
      - {name: slow, type: exec, listen: trigger.good, opts: {cmd: "sleep 30"}}
      - {name: either, class: merge, type: any, wait: [task.fast.good, task.slow.good]}
      - {name: fin, type: end, listen: merge.either.good}
`,
  );
  const result = async (flow: string) => h.end((await h.hub.trigger({ flow })).ref.run);
  const r1 = await result("bad-unhandled");
  t.same([r1.result, r1.reason], ["bad", "task.a.bad has no listener"]);
  const r2run = await h.hub.trigger({ flow: "dangling-good-waits" });
  const r2 = await h.end(r2run.ref.run);
  t.equal(r2.result, "good", "quiescent with only good dangling events → good");
  t.equal(nodeOf((await h.hub.getRun(r2run.ref.run)).nodes, "slow").state, "good", "the good event of quick did not end the run early (floe bug 10)");
  t.equal((await result("end-on-bad")).result, "bad", "end node reached by a bad event → bad");
  const handledRun = await h.hub.trigger({ flow: "handled-failure" });
  t.equal((await h.end(handledRun.ref.run)).result, "good", "a failure handled by a listener");
  const useStatusRun = await h.hub.trigger({ flow: "use-status" });
  await h.end(useStatusRun.ref.run);
  t.equal(nodeOf((await h.hub.getRun(useStatusRun.ref.run)).nodes, "three").state, "good", "the end node that was reached shows good");
  const endBadRun = await h.hub.trigger({ flow: "end-on-bad" });
  await h.end(endBadRun.ref.run);
  t.equal(nodeOf((await h.hub.getRun(endBadRun.ref.run)).nodes, "fin").state, "bad", "an end node reached by a bad event shows bad");
  t.equal((await result("use-status")).result, "good", "use-status tag task.st.3");
  t.equal((await result("ignore-fail")).result, "good");
  const e = await result("error-tag");
  t.equal(e.result, "bad", "the end node got a non-good event");
  const anyRun = await h.hub.trigger({ flow: "merge-any" });
  const any = await h.end(anyRun.ref.run);
  t.equal(any.result, "good");
  const slow = nodeOf((await h.hub.getRun(anyRun.ref.run)).nodes, "slow");
  t.equal(slow.state, "cancelled", "the slow branch was killed when the run ended (floe bug 11)");
  const skipRun = await h.hub.trigger({ flow: "skips" });
  t.equal((await h.end(skipRun.ref.run)).result, "bad");
  const skipped = (await h.hub.getRun(skipRun.ref.run)).nodes;
  t.same(["a", "deploy", "tests-done", "fin", "ok"].map((id) => nodeOf(skipped, id).state), ["bad", "skipped", "skipped", "bad", "skipped"], "nodes never reached show skipped once the run ended");
});

t.test("outputs, env and $VAR", async (t) => {
  const h = await startHub(
    t,
    `
flows:
  - id: env
    env: [FLOWVAR=from-flow, "WS_DIR={{ws}}/x"]
    triggers:
      - name: go
        type: data
        opts: {form: {title: Go, fields: [{id: from-ref, prompt: Ref}]}}
    tasks:
      - name: produce
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "version=1.2.3" >> "$FLOE_OUTPUT"; echo "# comment" >> "$FLOE_OUTPUT"'}
      - name: consume
        type: exec
        listen: task.produce.good
        opts:
          env: [NODEVAR=from-node]
          shell: 'echo "v=$version flow=$FLOWVAR node=$NODEVAR ref=$FROM_REF ws=$WS_DIR run=$FLOE_RUN_ID"'
      - {name: literal, type: exec, listen: task.consume.good, opts: {cmd: "echo $FLOWVAR"}}
      - {name: fin, type: end, listen: task.literal.good}
`,
  );
  const run = await h.hub.trigger({ flow: "env", values: { "from-ref": "main" } });
  const end = await h.end(run.ref.run);
  t.equal(end.result, "good", end.reason ?? "");
  const ws = h.hub.workspaceForRun(run.ref.run);
  const out = (await h.hub.readLog(run.ref.run, "consume")).lines.filter((l) => l.stream === "out").map((l) => l.text);
  t.same(out, [`v=1.2.3 flow=from-flow node=from-node ref=main ws=${ws}/x run=${run.ref.run}`]);
  const lit = (await h.hub.readLog(run.ref.run, "literal")).lines.filter((l) => l.stream === "out").map((l) => l.text);
  t.same(lit, ["$FLOWVAR"], "cmd is not expanded by the server (floe bug 13)");
});

t.test("timeouts, retries and cancel", async (t) => {
  const h = await startHub(
    t,
    `
flows:
  - id: task-timeout
    triggers: [{name: go, type: data}]
    tasks:
      - {name: hang, type: exec, listen: trigger.good, timeout: 300ms, opts: {cmd: "sleep 60"}}
  - id: run-timeout
    timeout: 400ms
    triggers: [{name: go, type: data}]
    tasks:
      - {name: hang, type: exec, listen: trigger.good, opts: {cmd: "sleep 60"}}
  - id: retry
    triggers: [{name: go, type: data}]
    tasks:
      - name: flaky
        type: exec
        listen: trigger.good
        retries: {max: 3, backoff: 50ms}
        opts: {shell: 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ]'}
      - {name: fin, type: end, listen: task.flaky.good}
  - id: retry-exhausted
    triggers: [{name: go, type: data}]
    tasks:
      - {name: never, type: exec, listen: trigger.good, retries: {max: 1, backoff: 10ms}, opts: {cmd: "false"}}
  - id: long
    triggers: [{name: go, type: data}]
    tasks:
      - {name: sleeper, type: exec, listen: trigger.good, opts: {shell: "echo started; sleep 60"}}
`,
  );
  const tt = await h.end((await h.hub.trigger({ flow: "task-timeout" })).ref.run);
  t.equal(tt.result, "bad");
  const ttDetail = (await h.hub.listRuns({ flow: "task-timeout" }))[0];
  t.ok(ttDetail);
  const hangNode = nodeOf((await h.hub.getRun(tt.ref.run)).nodes, "hang");
  t.match(hangNode.reason, /timed out after 300ms/);
  const rt = await h.end((await h.hub.trigger({ flow: "run-timeout" })).ref.run);
  t.same([rt.result, rt.reason], ["bad", "run timed out after 400ms"]);
  const retry = await h.hub.trigger({ flow: "retry" });
  const re = await h.end(retry.ref.run);
  t.equal(re.result, "good", re.reason ?? "");
  t.equal(nodeOf((await h.hub.getRun(retry.ref.run)).nodes, "flaky").attempts, 3, "two retries after the first attempt");
  const ex = await h.hub.trigger({ flow: "retry-exhausted" });
  t.equal((await h.end(ex.ref.run)).result, "bad");
  t.equal(nodeOf((await h.hub.getRun(ex.ref.run)).nodes, "never").attempts, 2, "max 1 = one retry");
  const long = await h.hub.trigger({ flow: "long" });
  await until(async () => (await h.hub.readLog(long.ref.run, "sleeper")).lines.some((l) => l.text === "started"), 20_000, "sleeper to start");
  await h.hub.cancel(long.ref.run, "a test");
  const c = await h.end(long.ref.run);
  t.same([c.result, c.reason], ["cancelled", "cancelled by a test"]);
  t.equal(nodeOf((await h.hub.getRun(long.ref.run)).nodes, "sleeper").state, "cancelled");
  await t.rejects(h.hub.cancel(long.ref.run, "again"), { code: "E_RUN_ENDED" });
  t.ok(FloeError);
});
