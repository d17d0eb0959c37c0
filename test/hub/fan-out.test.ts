/**
 * Fan-out (`for-each`, `parallel`): one instance per item with FLOE_ITEM and
 * FLOE_ITEM_NAME, at most `parallel` at once (proven from the instances' own start and end
 * stamps), one event when all have ended, instances with their exit codes in the API and
 * their lines marked in the log; a failed instance fails the task (ignore-fail applies) and
 * a retry runs only the instances that failed; cancel kills every running instance.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import type { NodeStatus } from "../../hub/types.js";
import { parseConfig } from "../../flows/parse.js";
import { ADMIN, startApi } from "../helpers/api.js";
import { startHub, until } from "../helpers/hub.js";

const nodeOf = (nodes: readonly NodeStatus[], id: string): NodeStatus => {
  const n = nodes.find((x) => x.id === id);
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
};

/** The most intervals open at once, from `start <ns>` / `end <ns>` lines of each instance. */
function maxOverlap(stamps: string): number {
  const points: [bigint, number][] = [];
  for (const l of stamps.trim().split("\n")) {
    const [what, ns] = l.split(" ");
    points.push([BigInt(ns as string), what === "start" ? 1 : -1]);
  }
  points.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let open = 0;
  let most = 0;
  for (const [, d] of points) {
    open += d;
    most = Math.max(most, open);
  }
  return most;
}

t.test("a list fan-out runs one instance per item, at most `parallel` at once, and emits one event", async (t) => {
  const marks = mkdtempSync(join(tmpdir(), "floe-fan-"));
  const h = await startApi(
    t,
    `
flows:
  - id: matrix
    triggers: [{name: go, type: data}]
    tasks:
      - name: build
        type: exec
        listen: trigger.good
        for-each: [linux, darwin, windows, freebsd, 7, plan9]
        parallel: 2
        opts: {shell: 'echo "start $(date +%s%N)" >> ${marks}/stamps; echo "building $FLOE_ITEM as $FLOE_ITEM_NAME #$FLOE_ITEM_INDEX"; echo "last=$FLOE_ITEM" >> "$FLOE_OUTPUT"; echo "os_$FLOE_ITEM_INDEX=$FLOE_ITEM" >> "$FLOE_OUTPUT"; sleep 0.3; echo "end $(date +%s%N)" >> ${marks}/stamps'}
      - name: after
        type: exec
        listen: task.build.good
        opts: {shell: 'echo once >> ${marks}/after; echo "last=$FLOE_OUT_BUILD_LAST os0=$FLOE_OUT_BUILD_OS_0"'}
      - {name: fin, type: end, listen: task.after.good}
`,
  );
  const run = await h.hub.trigger({ flow: "matrix" });
  const end = await h.end(run.ref.run);
  t.equal(end.result, "good", end.reason ?? "");
  const stamps = readFileSync(join(marks, "stamps"), "utf8");
  t.equal(stamps.trim().split("\n").length, 12, "six instances started and ended");
  t.equal(maxOverlap(stamps), 2, "never more than two at once, and two did run together");
  t.equal(readFileSync(join(marks, "after"), "utf8"), "once\n", "the task emitted one event: its listener ran once");

  const r = await h.call("GET", `/runs/${run.ref.run}`, { token: ADMIN });
  const build = nodeOf((r.json as { nodes: NodeStatus[] }).nodes, "build");
  t.equal(build.state, "good");
  t.same(
    build.instances?.map((i) => [i.index, i.item, i.name, i.state, i.exitCode]),
    [
      [0, "linux", "linux", "good", 0],
      [1, "darwin", "darwin", "good", 0],
      [2, "windows", "windows", "good", 0],
      [3, "freebsd", "freebsd", "good", 0],
      [4, "7", "7", "good", 0],
      [5, "plan9", "plan9", "good", 0],
    ],
    "every instance listed with its item and exit code, in item order",
  );
  t.ok(build.instances?.every((i) => i.startedAt !== undefined && i.endedAt !== undefined && i.endedAt >= i.startedAt), "with their times");
  t.match(build.outputs, { last: "plan9", os_0: "linux", os_5: "plan9" }, "outputs merged in item order, a later instance winning");

  const log = await h.call("GET", `/runs/${run.ref.run}/nodes/build/log?limit=1000`, { token: ADMIN });
  const lines = (log.json as { lines: { text: string; stream: string; instance?: number }[] }).lines.filter((l) => l.stream === "out");
  t.same(
    lines.map((l) => [l.instance, l.text]).sort((a, b) => Number(a[0]) - Number(b[0])),
    [
      [0, "building linux as linux #0"],
      [1, "building darwin as darwin #1"],
      [2, "building windows as windows #2"],
      [3, "building freebsd as freebsd #3"],
      [4, "building 7 as 7 #4"],
      [5, "building plan9 as plan9 #5"],
    ],
    "each line marked with the instance that printed it",
  );
  const after = await h.call("GET", `/runs/${run.ref.run}/nodes/after/log`, { token: ADMIN });
  t.ok((after.json as { lines: { text: string }[] }).lines.some((l) => l.text === "last=plan9 os0=linux"), "later tasks get the merged outputs");
});

t.test("a failed instance fails the task, naming it; ignore-fail makes it good; a retry runs only the failed instances", async (t) => {
  const marks = mkdtempSync(join(tmpdir(), "floe-fan-"));
  const h = await startHub(
    t,
    `
flows:
  - id: strict
    triggers: [{name: go, type: data}]
    tasks:
      - name: check
        type: exec
        listen: trigger.good
        for-each: [a, b, c]
        opts: {shell: 'test "$FLOE_ITEM" != b || exit 3'}
  - id: lenient
    triggers: [{name: go, type: data}]
    tasks:
      - name: check
        type: exec
        listen: trigger.good
        ignore-fail: true
        for-each: [a, b, c]
        opts: {shell: 'test "$FLOE_ITEM" != b || exit 3'}
      - {name: fin, type: end, listen: task.check.good}
  - id: flaky
    triggers: [{name: go, type: data}]
    tasks:
      - name: check
        type: exec
        listen: trigger.good
        retries: {max: 2, backoff: 100ms}
        for-each: [a, b, c]
        opts: {shell: 'echo "$FLOE_ITEM" >> ${marks}/tries; if [ "$FLOE_ITEM" = b ] && [ ! -f ${marks}/b-ok ]; then touch ${marks}/b-ok; exit 1; fi'}
      - {name: fin, type: end, listen: task.check.good}
`,
  );
  const strict = await h.hub.trigger({ flow: "strict" });
  const s = await h.end(strict.ref.run);
  t.equal(s.result, "bad");
  const check = (await h.hub.getRun(strict.ref.run)).nodes.find((n) => n.id === "check") as NodeStatus;
  t.equal(check.state, "bad");
  t.equal(check.exitCode, 3, "the exit code of the instance that failed");
  t.match(check.reason, /1 of 3 instances failed: b \(exit status 3\)/);
  t.same(check.instances?.map((i) => i.state), ["good", "bad", "good"], "the others ran to their end");

  const lenient = await h.hub.trigger({ flow: "lenient" });
  t.equal((await h.end(lenient.ref.run)).result, "good", "ignore-fail: the task emits good");

  const flaky = await h.hub.trigger({ flow: "flaky" });
  const f = await h.end(flaky.ref.run);
  t.equal(f.result, "good", f.reason ?? "");
  t.same(readFileSync(join(marks, "tries"), "utf8").trim().split("\n").sort(), ["a", "b", "b", "c"], "the retry ran b again, not a and c");
});

t.test("cancelling a run mid fan-out kills every running instance and starts no more", async (t) => {
  const marks = mkdtempSync(join(tmpdir(), "floe-fan-"));
  const h = await startHub(
    t,
    `
flows:
  - id: long
    triggers: [{name: go, type: data}]
    tasks:
      - name: work
        type: exec
        listen: trigger.good
        for-each: [1, 2, 3, 4, 5, 6]
        parallel: 3
        opts: {shell: 'echo "$FLOE_ITEM" >> ${marks}/started; sleep 30; echo "$FLOE_ITEM" >> ${marks}/finished'}
`,
  );
  const run = await h.hub.trigger({ flow: "long" });
  await until(() => existsSync(join(marks, "started")) && readFileSync(join(marks, "started"), "utf8").trim().split("\n").length === 3, 20_000, "three instances running");
  await h.hub.cancel(run.ref.run, "test");
  const end = await h.end(run.ref.run);
  t.equal(end.result, "cancelled");
  await new Promise((r) => setTimeout(r, 500));
  t.equal(readFileSync(join(marks, "started"), "utf8").trim().split("\n").length, 3, "no instance started after the cancel");
  t.notOk(existsSync(join(marks, "finished")), "the running instances were killed");
  const work = (await h.hub.getRun(run.ref.run)).nodes.find((n) => n.id === "work") as NodeStatus;
  t.equal(work.state, "cancelled");
});

t.test("for-each and parallel are checked where they are written", async (t) => {
  const bad = parseConfig(
    `
flows:
  - id: f
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, for-each: everything, opts: {cmd: "true"}}
      - {name: b, type: exec, listen: trigger.good, for-each: [], opts: {cmd: "true"}}
      - {name: c, type: exec, listen: trigger.good, for-each: [x], parallel: 0, opts: {cmd: "true"}}
      - {name: d, type: data, listen: trigger.good, for-each: [x], opts: {form: {fields: [{id: v}]}}}
      - {name: e, type: exec, listen: trigger.good, parallel: 2, opts: {cmd: "true"}}
`,
    "fan.yml",
  );
  const msgs = bad.diagnostics.map((d) => `${d.line}:${d.severity}: ${d.message}`);
  t.ok(msgs.some((m) => /^6:error: "for-each" in .* must be "artifacts" or a list of values, not/.test(m)), msgs.join("\n"));
  t.ok(msgs.some((m) => /^7:error: .*for-each.* is an empty list/.test(m)), msgs.join("\n"));
  t.ok(msgs.some((m) => /^8:error: "parallel" .* must be at least 1/.test(m)), msgs.join("\n"));
  t.ok(msgs.some((m) => /^9:error: a data task .* can not have "for-each"/.test(m)), msgs.join("\n"));
  t.ok(msgs.some((m) => /^10:warning: "parallel" of task .* has no meaning without "for-each"/.test(m)), msgs.join("\n"));
  const good = parseConfig(`flows:\n  - id: f\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: a, type: exec, listen: trigger.good, for-each: artifacts, parallel: 4, opts: {cmd: "true"}}\n`, "ok.yml");
  t.same(good.diagnostics.filter((d) => d.severity === "error"), []);
  const a = good.config?.flows[0]?.tasks[0];
  t.match(a, { forEach: "artifacts", parallel: 4 });
});
