/**
 * `type: flow` tasks are checked like every node (options, shapes) and over the whole config:
 * the flow they start must exist, and no flow may start itself, directly or through others,
 * each reported at the line and column of the `flow:` value — by `floe validate` and by the
 * config load a host does.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { formatDiagnostic } from "../../flows/diagnostics.js";
import { parseConfig } from "../../flows/parse.js";
import { floeBin } from "../helpers/paths.js";

function errors(text: string): string[] {
  return parseConfig(text, "f.yml").diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic);
}

const GOOD = `flows:
  - id: pipeline
    triggers: [{id: go, type: data}]
    tasks:
      - id: deploy
        type: flow
        listen: trigger.good
        opts: {flow: deploy, ver: 2, trigger: start, values: {ENV: prod, N: 3}, pass: [VERSION], artifacts: [build, build/app.tar]}
      - {id: done, type: end, listen: task.deploy.good}
  - id: deploy
    ver: 2
    triggers: [{id: start, type: data}]
    tasks: [{id: push, type: exec, listen: trigger.good, opts: {cmd: "true"}}, {id: done, type: end, listen: task.push.good}]
`;

t.test("a well-formed flow task loads, with its options as written", async (t) => {
  const res = parseConfig(GOOD, "f.yml");
  t.same(res.diagnostics.filter((d) => d.severity === "error"), []);
  const task = res.config?.flows[0]?.tasks[0];
  t.equal(task?.type, "flow");
  t.same(task?.opts, { flow: "deploy", ver: 2, trigger: "start", values: { ENV: "prod", N: 3 }, pass: ["VERSION"], artifacts: ["build", "build/app.tar"] });
});

t.test("unknown flow id and version, at the flow: value", async (t) => {
  const text = `flows:
  - id: a
    tasks:
      - id: x
        type: flow
        listen: trigger.good
        opts: {flow: deplyo}
      - id: y
        type: flow
        listen: task.x.good
        opts:
          flow: deploy
          ver: 7
  - id: deploy
    tasks: [{id: t, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
`;
  t.same(errors(text), [
    `f.yml:7:22: error: task "x" of flow a starts flow "deplyo", which this config does not define (did you mean "deploy"?)`,
    `f.yml:12:17: error: task "y" of flow a starts flow "deploy" version 7, which this config does not define (versions: 1)`,
  ]);
});

t.test("a flow that starts itself directly", async (t) => {
  const text = `flows:
  - id: loop
    tasks:
      - id: again
        type: flow
        listen: trigger.good
        opts:
          flow: loop
`;
  t.same(errors(text), [`f.yml:8:17: error: task "again" of flow loop starts itself: loop → loop; a flow may not start itself, directly or through others`]);
});

t.test("a flow that starts itself through others: every flow: on the cycle is reported, and only those", async (t) => {
  const text = `flows:
  - id: a
    tasks:
      - {id: to-b, type: flow, listen: trigger.good, opts: {flow: b}}
  - id: b
    tasks:
      - {id: to-c, type: flow, listen: trigger.good, opts: {flow: c}}
      - {id: to-d, type: flow, listen: trigger.good, opts: {flow: d}}
  - id: c
    tasks:
      - {id: to-a, type: flow, listen: trigger.good, opts: {flow: a}}
  - id: d
    tasks:
      - {id: leaf, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`;
  t.same(errors(text), [
    `f.yml:4:67: error: task "to-b" of flow a starts itself through other flows: a → b → c → a; a flow may not start itself, directly or through others`,
    `f.yml:7:67: error: task "to-c" of flow b starts itself through other flows: b → c → a → b; a flow may not start itself, directly or through others`,
    `f.yml:11:67: error: task "to-a" of flow c starts itself through other flows: c → a → b → c; a flow may not start itself, directly or through others`,
  ]);
});

t.test("options: unknown ones and wrong shapes are errors", async (t) => {
  const text = `flows:
  - id: a
    tasks:
      - id: x
        type: flow
        listen: trigger.good
        opts:
          flow: b
          ver: latest
          values: {ok: 1, bad: [1, 2], "not ok": 2}
          pass: [GOOD_NAME, "no-dashes"]
          artifacts: ["../up", node]
          valeus: {}
      - id: y
        type: flow
        listen: task.x.good
        opts: {pass: VERSION}
      - id: z
        type: flow
        listen: task.y.good
        opts: {flow: [b]}
  - id: b
    tasks: [{id: t, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
`;
  t.same(errors(text).sort(), [
    `f.yml:9:16: error: opts.ver of node "x" must be a whole number, at least 1`,
    `f.yml:10:19: error: opts.values.bad of node "x" must be a single value, not a list`,
    `f.yml:10:19: error: opts.values of node "x": "not ok" is not a usable value name (letters, digits and _, not first a digit)`,
    `f.yml:11:17: error: opts.pass of node "x": "no-dashes" is not an environment variable name`,
    `f.yml:12:22: error: opts.artifacts of node "x": "../up" must name an earlier node's artifacts as node or node/name`,
    `f.yml:13:11: error: unknown option "valeus" in opts of task node "x" (flow) (did you mean "values"?); flow tasks know flow, ver, trigger, values, pass, artifacts`,
    `f.yml:17:22: error: opts.pass of task node "y" must be a list of text values, not the text "VERSION"`,
    `f.yml:17:15: error: flow task node "y" needs opts.flow: the id of the flow it starts`,
    `f.yml:21:22: error: opts.flow of task node "z" must be text, not a list`,
  ].sort());
});

t.test("floe validate reports a cycle with its place and exits 1; the good config passes", async (t) => {
  const dir = t.testdir({});
  const bad = join(dir, "bad.yml");
  writeFileSync(bad, `flows:\n  - id: loop\n    tasks:\n      - {id: again, type: flow, listen: trigger.good, opts: {flow: loop}}\n`);
  const r = spawnSync(process.execPath, [floeBin, "validate", bad], { encoding: "utf8" });
  t.equal(r.status, 1);
  t.match(r.stdout, `${bad}:4:68: error: task "again" of flow loop starts itself: loop → loop`);
  const good = join(dir, "good.yml");
  writeFileSync(good, GOOD);
  const g = spawnSync(process.execPath, [floeBin, "validate", good], { encoding: "utf8" });
  t.equal(g.status, 0, g.stdout + g.stderr);
});
