/** floe's own config tests (reference §8), as ours: the same fixtures, the same expectations. */
import { readFileSync } from "node:fs";
import t from "tap";
import { expandWs, mergeOpts } from "../../flows/expand.js";
import { flowFileKind } from "../../flows/flow-file.js";
import { buildGraph } from "../../flows/graph.js";
import { deriveIdName } from "../../flows/ids.js";
import type { Config, Flow } from "../../flows/model.js";
import { parseConfig, parseFlowText } from "../../flows/parse.js";
import { matchTag, tagsMatch } from "../../flows/tags.js";
import { refConfig } from "../helpers/paths.js";

function load(name: string): Config {
  const res = parseConfig(readFileSync(refConfig(name), "utf8"), name);
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (res.config === undefined) throw new Error(`${name} did not load: ${JSON.stringify(errors)}`);
  return res.config;
}

function sortedJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val !== null && typeof val === "object" && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : val,
  );
}

t.test("TestZeroNID: ids and names", async (t) => {
  const ok = (id: string, name: string, wantId: string, wantName: string) => {
    const r = deriveIdName(id, name);
    t.ok(r.ok, `${id}/${name} derives`);
    if (r.ok) t.same([r.id, r.name], [wantId, wantName], `id "${id}" name "${name}"`);
  };
  ok("a-b", "", "a-b", "a b");
  ok("", "a b.2", "a-b-2", "a b.2");
  ok("a-b--", "", "a-b", "a b");
  ok("--a-b..", "", "a-b", "a b");
  ok("", "Build Project", "build-project", "Build Project");
  for (const [id, name] of [["", ""], ["a.b", ""], ["a b", ""]] as const) {
    t.notOk(deriveIdName(id, name).ok, `id "${id}" name "${name}" is an error`);
  }
  t.match(deriveIdName("", "").ok ? "" : (deriveIdName("", "") as { error: string }).error, "id and name can not both be empty");
});

t.test("TestYaml", async (t) => {
  const c = load("test_config_config_test_in.yml");
  const f0 = c.flows[0] as Flow;
  t.equal(f0.reuseSpace, true);
  t.equal(f0.hostTags.length, 3);
  t.equal(f0.resourceTags.length, 2);
  const withData = c.flows.filter((f) => f.triggers.some((tr) => tr.type === "data"));
  t.same(withData.map((f) => [f.id, f.ver]), [["build-project", 1]], "exactly one flow has a data trigger");
  t.equal(c.flows[1]?.triggers.length, 0, "the flow with the unknown key subs has no triggers");
  const m = matchTag(f0, "trigger.good");
  t.equal(m[0]?.class, "task");
  t.equal(m[0]?.id, "checkout");
  const b = matchTag(f0, "task.build.good");
  t.equal(b.length, 1);
  t.same([b[0]?.class, b[0]?.id], ["merge", "builds"]);
});

t.test("TestYamlTrigger: opts keep their case", async (t) => {
  const c = load("test_config_config_test_in.yml");
  const data = c.flows[0]?.triggers.filter((tr) => tr.type === "data") ?? [];
  t.equal(data.length, 2);
  t.equal(sortedJson(data[1]?.opts), '{"Form":{"Fields":[{"Id":"branch","Prompt":"Branch","Type":"string"}],"Title":"Start"}}');
});

t.test("TestZero and TestMatchTag", async (t) => {
  const text = `
flows:
  - id: f
    triggers:
      - name: Start
        type: data
    tasks:
      - name: First Task
        type: exec
        listen: trigger.good
        opts: {cmd: "true"}
      - name: m
        class: merge
        wait: [task.first.good]
`;
  const res = parseConfig(text, "zero.yml");
  const f = res.config?.flows[0];
  t.ok(f, "loads (a merge may wait on a tag nobody emits)");
  if (!f) return;
  t.equal(f.ver, 1, "ver defaults to 1");
  t.equal(f.triggers[0]?.id, "start");
  t.same([f.tasks[0]?.id, f.tasks[0]?.class], ["first-task", "task"]);
  t.equal(f.tasks[1]?.class, "merge");
  t.equal(matchTag(f, "trigger.good").length, 1);
  t.equal(matchTag(f, "task.first.good").length, 1);
  t.ok(res.diagnostics.some((d) => d.severity === "warning" && d.message.includes("task.first.good")), "the unknown tag is a warning");
});

t.test("TestGraph: 6 levels", async (t) => {
  const f = load("test_config_config_test_in.yml").flows[0] as Flow;
  const g = buildGraph(f);
  t.same(g.levels, [["input", "start"], ["checkout"], ["build", "build-osx"], ["builds"], ["test"], ["complete"]]);
  t.ok(g.edges.some((e) => e.from === "build" && e.to === "builds" && e.tag === "task.build.good"));
});

t.test("TestExpandEnvOpts (without floe's server-$VAR case)", async (t) => {
  const ws = "/base/path";
  const vectors: [string, string][] = [
    ["OOF={{ws}}/oof", "OOF=/base/path/oof"],
    ["./go", "/base/path/go"],
    ["OOF=./oof", "OOF=/base/path/oof"],
    ["/go{{ws}}", "/go/base/path"],
    ["/go/{{ws}}", "/go/base/path"],
    ["./...", "./..."],
    ["./../", "/base/path/../"],
    [".", "/base/path"],
    ["PATH=./go/bin:$PATH", "PATH=/base/path/go/bin:$PATH"],
  ];
  for (const [in_, want] of vectors) t.equal(expandWs(in_, ws), want, in_);
});

t.test("TestMergeOpts", async (t) => {
  const l = { a: 1, env: ["lar0", "lar1", "lar2"] };
  const r = { b: 2, env: ["rar0", "rar1", "rar2"] };
  const m = mergeOpts(l, r);
  const env = m["env"] as string[];
  t.equal(env.length, 6);
  t.equal(env[4], "rar1");
  t.same(mergeOpts({}, { env: ["x=1"] })["env"], ["x=1"], "env is present when only r has it");
  t.equal(mergeOpts({ a: 1 }, { a: 2 })["a"], 2, "r wins");
});

t.test("TestTagsMatch", async (t) => {
  const cases: [string[], string[], boolean][] = [
    [["t1", "t2"], ["t1", "t2"], true],
    [["t1", "t2"], ["t1"], true],
    [["t1", "t2"], ["t1", "t3"], false],
    [["t1", "t2"], ["t1", "t2", "t3"], false],
    [["t1", "t2"], [], true],
    [[], [], true],
    [[], ["t1", "t2"], false],
  ];
  for (const [host, req, want] of cases) t.equal(tagsMatch(host, req), want, `${host} / ${req}`);
});

t.test("TestGetURLType", async (t) => {
  t.equal(flowFileKind("/foo/bar/fl.yaml"), "local");
  t.equal(flowFileKind("git@github.com:floeit/floe.git/FLOE.yaml"), "git");
  t.equal(flowFileKind("https://github.com/floeit/floe.git/build/FLOE.yaml"), "git");
  t.equal(flowFileKind("http://example.com/FLOE.yaml"), "web");
  t.equal(flowFileKind("https://example.com/FLOE.yaml"), "web");
});

t.test("TestLoad: the flow-file form", async (t) => {
  const res = parseFlowText(readFileSync(refConfig("test_config_flow_test_floeIn.yml"), "utf8"), "floeIn.yml");
  t.ok(res.flow);
  if (!res.flow) return;
  t.equal(matchTag(res.flow, "merge.builds.good").length, 1);
  t.same(res.flow.resourceTags, ["couchbase", "nic"]);
});

t.test("every reference config loads", async (t) => {
  for (const name of ["config.yml", "dev_config.yml", "test_cmd_floe_integ_test_setupWeb_in.yml", "test_config_config_test_in.yml", "test_hub_hub_test_in.yml", "test_hub_hub_test_inData.yml", "test_hub_timers_integ_test_trigFlow.yml"]) {
    t.doesNotThrow(() => load(name), name);
  }
  for (const name of ["floe.yml", "dev_floe.yml", "test_config_flow_test_floeIn.yml"]) {
    t.ok(parseFlowText(readFileSync(refConfig(name), "utf8"), name).flow, `${name} loads as a flow-file`);
  }
});

t.test("the loaded config is frozen", async (t) => {
  const c = load("test_hub_hub_test_in.yml");
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.flows[0]) && Object.isFrozen(c.flows[0]?.tasks[0]?.opts));
});
