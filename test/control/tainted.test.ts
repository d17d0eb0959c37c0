/**
 * Tainted runs with a real `floe serve`: after a SIGHUP reload changes node b, the archived
 * runs that went through b are listed with b as their first changed node (a run that never
 * reached b is not), and re-running them runs the current definition from b on — a replayed,
 * not run again — after which they are no longer listed.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { evidence } from "../helpers/cluster.js";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

interface Tainted {
  run: string;
  from?: string;
  changed: string;
}

const tainted = async (p: FloeProcess): Promise<Tainted[]> => ((await p.req("GET", "/flows/tf/tainted")).body as { runs: Tainted[] }).runs;
const state = async (p: FloeProcess, id: string): Promise<{ state: string; result?: string }> => (await p.req("GET", `/runs/${id}`)).body as { state: string; result?: string };

t.test("runs made by a changed node are listed and re-run from it", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "floe-tainted-"));
  const trail = join(dir, "trail");
  const conf = join(dir, "flows.yml");
  const flows = (b: string) => `
flows:
  - id: tf
    triggers: [{name: go, type: data, opts: {form: {fields: [{id: fail, prompt: fail}]}}}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: 'echo "a $FLOE_RUN_ID" >> ${trail}; test "$fail" != yes'}}
      - {name: b, type: exec, listen: task.a.good, opts: {shell: 'echo "${b} $FLOE_RUN_ID" >> ${trail}'}}
      - {name: c, type: exec, listen: task.b.good, opts: {shell: 'echo "c $FLOE_RUN_ID" >> ${trail}'}}
`;
  writeFileSync(conf, flows("b1"));
  const p = await startFloe({ conf, root: join(dir, "root") });
  t.teardown(() => p.kill9());
  const runs: string[] = [];
  for (const fail of ["no", "no", "yes"]) {
    const r = await p.req("POST", "/flows/tf/runs", { values: { fail } });
    const id = (r.body as { run: { ref: { run: string } } }).run.ref.run;
    await until(async () => (await state(p, id)).state === "archived", 20_000, "run ends");
    runs.push(id);
  }
  t.same(await tainted(p), [], "nothing is tainted before a change");
  t.equal((await p.req("GET", "/flows/nope/tainted")).status, 404);

  writeFileSync(conf, flows("b2"));
  p.child.kill("SIGHUP");
  await until(async () => (await tainted(p)).length > 0, 20_000, "the reload");
  const list = await tainted(p);
  t.same(list.map((x) => x.run).sort(), [runs[0], runs[1]].sort(), "the runs that went through b; not the one that failed before it");
  t.ok(list.every((x) => x.from === "b" && x.changed === 'node "b" changed'), JSON.stringify(list));

  const before = evidence(trail).length;
  const again = await p.req("POST", "/flows/tf/tainted/rerun", {});
  t.equal(again.status, 201, JSON.stringify(again.body));
  const made = (again.body as { runs: { of: string; run: { ref: { run: string } } }[] }).runs;
  t.equal(made.length, 2);
  for (const m of made) await until(async () => (await state(p, m.run.ref.run)).state === "archived", 20_000, "re-run ends");
  for (const m of made) t.equal((await state(p, m.run.ref.run)).result, "good");
  const lines = evidence(trail).slice(before);
  t.equal(lines.filter((l) => l.startsWith("a ")).length, 0, "a was replayed, not run again");
  t.equal(lines.filter((l) => l.startsWith("b2 ")).length, 2, "b ran with the current definition");
  t.equal(lines.filter((l) => l.startsWith("c ")).length, 2);
  t.same(await tainted(p), [], "re-run with the current definition: no longer tainted");
  t.equal((await p.req("POST", "/flows/tf/tainted/rerun", { runs: [runs[2]] })).status, 404, "a run that is not tainted is refused");
});
