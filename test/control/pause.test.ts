/**
 * Pause and resume with a real `floe serve` process: a paused run lets its running task
 * finish but starts no new one, stays paused across a restart of its host, and runs on from
 * where it was once resumed. The tasks' own evidence is a file each appends to.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

interface Node {
  id: string;
  state: string;
  reason?: string;
}
interface Run {
  state: string;
  result?: string;
  paused?: boolean;
  pausedBy?: string;
  nodes: Node[];
}

async function run(p: FloeProcess, id: string): Promise<Run> {
  return (await p.req("GET", `/runs/${id}`)).body as Run;
}

const node = (r: Run, id: string): Node | undefined => r.nodes.find((n) => n.id === id);

t.test("a pause holds across a restart of the host and resumes after", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "floe-pause-"));
  const root = join(dir, "root");
  const gate = join(dir, "go");
  const trail = join(dir, "trail");
  const conf = join(dir, "flows.yml");
  writeFileSync(
    conf,
    `
flows:
  - id: p
    triggers: [{name: go, type: data}]
    tasks:
      - {name: one, type: exec, listen: trigger.good, opts: {shell: 'while [ ! -f ${gate} ]; do sleep 0.05; done; echo one >> ${trail}'}}
      - {name: two, type: exec, listen: task.one.good, opts: {shell: 'echo two >> ${trail}'}}
      - {name: three, type: exec, listen: task.two.good, opts: {shell: 'echo three >> ${trail}'}}
`,
  );
  let p = await startFloe({ conf, root });
  t.teardown(() => p.kill9());
  const started = await p.req("POST", "/flows/p/runs", {});
  t.equal(started.status, 201);
  const id = (started.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => node(await run(p, id), "one")?.state === "running", 20_000, "task one running");

  const paused = await p.req("POST", `/runs/${id}/pause`);
  t.equal(paused.status, 200, JSON.stringify(paused.body));
  t.match(paused.body, { run: { paused: true, pausedBy: "admin", state: "active" } });

  // The running task finishes; the next one waits for the resume.
  writeFileSync(gate, "");
  await until(async () => node(await run(p, id), "one")?.state === "good", 20_000, "task one good");
  await until(async () => node(await run(p, id), "two")?.reason?.startsWith("paused") === true, 20_000, "task two held");
  t.equal(readFileSync(trail, "utf8"), "one\n", "only task one ran");

  // A restart of the host: the run comes back paused, its next task still held.
  t.equal(await p.stop(), 0, "the host stopped cleanly");
  p = await startFloe({ conf, root });
  const back = await run(p, id);
  t.equal(back.state, "active");
  t.equal(back.paused, true, "still paused after the restart");
  t.equal(back.pausedBy, "admin");
  await until(async () => node(await run(p, id), "two")?.reason?.startsWith("paused") === true, 20_000, "task two held after the restart");
  t.equal(readFileSync(trail, "utf8"), "one\n", "nothing more ran after the restart");

  // Bad requests: an unknown run, a pend-less ended run later.
  t.equal((await p.req("POST", "/runs/NOSUCHRUN/pause")).status, 404);

  const resumed = await p.req("POST", `/runs/${id}/resume`);
  t.equal(resumed.status, 200, JSON.stringify(resumed.body));
  t.notOk((resumed.body as { run: { paused?: boolean } }).run.paused, "no longer paused");
  await until(async () => (await run(p, id)).state === "archived", 20_000, "the run ends");
  const end = await run(p, id);
  t.equal(end.result, "good");
  t.equal(readFileSync(trail, "utf8"), "one\ntwo\nthree\n", "the held tasks ran after the resume, once each");
  const again = await p.req("POST", `/runs/${id}/pause`);
  t.equal(again.status, 409, "an ended run can not be paused");
  t.match(again.body, { error: { code: "E_RUN_NOT_ACTIVE" } });
  t.ok(existsSync(trail));
});

t.test("cancel works on a paused run", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "floe-pause-cancel-"));
  const conf = join(dir, "flows.yml");
  const trail = join(dir, "trail");
  writeFileSync(
    conf,
    `
flows:
  - id: p
    triggers: [{name: go, type: data}]
    tasks:
      - {name: one, type: exec, listen: trigger.good, opts: {shell: 'while [ ! -f ${trail}.go ]; do sleep 0.05; done; echo one >> ${trail}'}}
      - {name: two, type: exec, listen: task.one.good, opts: {shell: 'echo two >> ${trail}'}}
`,
  );
  const p = await startFloe({ conf, root: join(dir, "root") });
  t.teardown(() => p.kill9());
  const id = ((await p.req("POST", "/flows/p/runs", {})).body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => node(await run(p, id), "one")?.state === "running", 20_000, "task one running");
  t.equal((await p.req("POST", `/runs/${id}/pause`)).status, 200);
  writeFileSync(`${trail}.go`, "");
  await until(async () => node(await run(p, id), "two")?.reason?.startsWith("paused") === true, 20_000, "task two held");
  const c = await p.req("POST", `/runs/${id}/cancel`);
  t.equal(c.status, 200);
  const end = await run(p, id);
  t.equal(end.result, "cancelled");
  t.notOk(end.paused, "an ended run is not shown paused");
  t.equal(readFileSync(trail, "utf8"), "one\n", "task two never ran");
});

t.test("a paused run's timeout keeps counting", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "floe-pause-timeout-"));
  const conf = join(dir, "flows.yml");
  const trail = join(dir, "trail");
  writeFileSync(
    conf,
    `
flows:
  - id: p
    timeout: 2s
    triggers: [{name: go, type: data}]
    tasks:
      - {name: one, type: exec, listen: trigger.good, opts: {shell: 'while [ ! -f ${trail}.go ]; do sleep 0.05; done; echo one >> ${trail}'}}
      - {name: two, type: exec, listen: task.one.good, opts: {shell: 'echo two >> ${trail}'}}
`,
  );
  const p = await startFloe({ conf, root: join(dir, "root") });
  t.teardown(() => p.kill9());
  const id = ((await p.req("POST", "/flows/p/runs", {})).body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => node(await run(p, id), "one")?.state === "running", 20_000, "task one running");
  t.equal((await p.req("POST", `/runs/${id}/pause`)).status, 200);
  writeFileSync(`${trail}.go`, "");
  await until(async () => (await run(p, id)).state === "archived", 20_000, "the run to time out while paused");
  const end = (await p.req("GET", `/runs/${id}`)).body as Run & { reason?: string };
  t.equal(end.result, "bad");
  t.match(end.reason ?? "", /timed out after 2s/);
  t.equal(readFileSync(trail, "utf8"), "one\n", "the held task never ran");
});
