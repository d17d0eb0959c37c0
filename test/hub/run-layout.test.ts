/**
 * What a run leaves on disk (DESIGN §6.4): run.json, one journal for the status records of
 * all its nodes (and floe's own lines about them), and a log file only for a node whose
 * process printed — not a status file per node and a log per task made at activation
 * whether or not they were ever used.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startHub, until } from "../helpers/hub.js";

t.test("a run's folder holds run.json, its journal and the logs of the nodes that printed", async (t) => {
  const h = await startHub(t, `
flows:
  - id: three
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: "echo hi"}}
      - {name: b, type: exec, listen: task.a.good, opts: {cmd: "true"}}
      - {name: c, type: exec, listen: task.b.good, opts: {cmd: "true"}}
      - {name: fin, type: end, listen: task.c.good}
`);
  const run = (await h.hub.trigger({ flow: "three" })).ref.run;
  t.equal((await h.end(run)).result, "good");
  const dir = join(h.root, "floes", "three", "1", "archive", run);
  const files = readdirSync(dir).sort();
  // b and c print nothing: floe's own lines about them (their folder, their command) are in the journal.
  t.same(files, ["a.log", "journal", "run.json"]);
  const lines = readFileSync(join(dir, "journal"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as [string, { t: string }]);
  t.same([...new Set(lines.map(([n]) => n))].sort(), ["", "a", "b", "c", "fin"], "every node that acted has records in it, and the run its activation");
  t.same(lines.filter(([n, r]) => n === "a" && r.t !== "log").map(([, r]) => r.t), ["start", "pgid", "done"]);
  const detail = await h.hub.getRun(run);
  t.same(detail.nodes.map((n) => [n.id, n.state]), [["go", "good"], ["a", "good"], ["b", "good"], ["c", "good"], ["fin", "good"]]);
  // The log API puts the two together, in the order the lines were numbered.
  const a = (await h.hub.readLog(run, "a")).lines;
  t.same(a.map((l) => l.seq), a.map((_, i) => i + 1), "lines numbered 1, 2, 3… across the journal and the file");
  t.same(a.filter((l) => l.stream === "out").map((l) => l.text), ["hi"]);
  t.ok(a.some((l) => l.stream === "sys" && l.text.startsWith("in dir")), "floe's own lines are there too");
  t.ok((await h.hub.readLog(run, "b")).lines.some((l) => l.stream === "sys"), "a node that printed nothing still shows floe's lines");
  t.equal(detail.nodes.find((n) => n.id === "a")?.logLines, a.length);
});

t.test("a node that never prints has no log file", async (t) => {
  const h = await startHub(t, `
flows:
  - id: gate
    triggers: [{name: go, type: data}]
    tasks:
      - {name: ok, class: merge, type: any, wait: [trigger.good]}
      - {name: fin, type: end, listen: merge.ok.good}
`);
  const run = (await h.hub.trigger({ flow: "gate" })).ref.run;
  t.equal((await h.end(run)).result, "good");
  t.same(readdirSync(join(h.root, "floes", "gate", "1", "archive", run)).sort(), ["journal", "run.json"]);
});

t.test("an active run keeps its pend's run.json; what its activation fixed is its journal's first record", async (t) => {
  const h = await startHub(t, `
flows:
  - id: wait
    triggers: [{name: go, type: data}]
    tasks:
      - {name: form, type: data, listen: trigger.good, opts: {form: {fields: [{id: ok, prompt: ok?, type: text}]}}}
`);
  const run = (await h.hub.trigger({ flow: "wait" })).ref.run;
  await until(async () => (await h.hub.getRun(run)).nodes.some((n) => n.id === "form" && "enabled" in n && n.enabled), 20_000, "the form to open");
  const dir = join(h.root, "floes", "wait", "1", "active", run);
  const record = JSON.parse(readFileSync(join(dir, "run.json"), "utf8")) as { startedAt?: number; workspace?: string };
  t.equal(record.startedAt, undefined, "run.json is the pend's: not rewritten at activation");
  const [key, first] = JSON.parse(readFileSync(join(dir, "journal"), "utf8").split("\n")[0] as string) as [string, Record<string, unknown>];
  const summary = await h.hub.getRun(run);
  t.equal(key, "", "a record of the run, not of a node");
  t.same(first, { t: "active", execHost: "h1", startedAt: summary.startedAt, workspace: join(h.root, "spaces", "wait", run) });
  await h.hub.cancel(run, "test");
  await h.end(run);
  const archived = JSON.parse(readFileSync(join(h.root, "floes", "wait", "1", "archive", run, "run.json"), "utf8")) as { startedAt?: number; ref: { execHost?: string } };
  t.equal(archived.startedAt, summary.startedAt, "the archived run.json holds it all");
  t.equal(archived.ref.execHost, "h1");
});
