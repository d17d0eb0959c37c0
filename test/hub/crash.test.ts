/**
 * A floe process killed with SIGKILL mid-run — mid-task, between tasks, during a merge —
 * and restarted: every run ends exactly once with the right result, nothing is lost, a
 * finished task does not run again, leftover processes of the dead host are killed, and
 * every file still parses.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

function conf(marks: string): string {
  return `
flows:
  - id: chain
    triggers: [{name: go, type: data}]
    tasks:
      - name: one
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "one-start $FLOE_RUN_ID" >> ${marks}/log; echo $$ > ${marks}/one-$FLOE_RUN_ID.pid; while [ ! -f ${marks}/release-one ]; do sleep 0.05; done; echo "one-end $FLOE_RUN_ID" >> ${marks}/log'}
      - name: two
        type: exec
        listen: task.one.good
        opts: {shell: 'echo "two-start $FLOE_RUN_ID" >> ${marks}/log; sleep 1; echo "two-end $FLOE_RUN_ID" >> ${marks}/log'}
      - {name: fin, type: end, listen: task.two.good}
  - id: fork
    triggers: [{name: go, type: data}]
    tasks:
      - name: fast
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "fast $FLOE_RUN_ID" >> ${marks}/log'}
      - name: slow
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "slow-start $FLOE_RUN_ID" >> ${marks}/log; while [ ! -f ${marks}/release-slow ]; do sleep 0.05; done; echo "slow-end $FLOE_RUN_ID" >> ${marks}/log'}
      - {name: both, class: merge, type: all, wait: [task.fast.good, task.slow.good]}
      - {name: fin, type: end, listen: merge.both.good}
  - id: gpu-only
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks: [{name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
  - id: fragile
    on-host-loss: fail
    triggers: [{name: go, type: data}]
    tasks:
      - name: once
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "fragile $FLOE_RUN_ID" >> ${marks}/log; sleep 3'}
`;
}

/** Dead, or a zombie nobody has reaped yet (the container's init reaps orphans slowly). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^\d+ \(.*\)/, ""));
  } catch {
    return true;
  }
}

const lines = (marks: string): string[] => (existsSync(join(marks, "log")) ? readFileSync(join(marks, "log"), "utf8").trim().split("\n") : []);
const count = (marks: string, text: string): number => lines(marks).filter((l) => l === text).length;

async function start(root: string, confPath: string): Promise<FloeProcess> {
  return startFloe({ conf: confPath, root });
}

async function trigger(f: FloeProcess, flow: string): Promise<string> {
  const res = await f.req("POST", `/flows/${flow}/runs`, {});
  if (res.status !== 201) throw new Error(`trigger ${flow}: ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body as { run: { ref: { run: string } } }).run.ref.run;
}

async function ended(f: FloeProcess, run: string): Promise<{ result: string; reason: string }> {
  let last: { state?: string; result?: string; reason?: string } = {};
  await until(async () => {
    const r = await f.req("GET", `/runs/${run}`);
    last = r.body as typeof last;
    return last.state === "archived";
  }, 30_000, `run ${run} to end`);
  return { result: last.result ?? "", reason: last.reason ?? "" };
}

/** Every file under floes/ parses (a torn last line of an append-only file is tolerated). */
function checkFiles(t: Test, root: string): void {
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  let n = 0;
  for (const file of walk(join(root, "floes"))) {
    n++;
    const text = readFileSync(file, "utf8");
    if (file.endsWith("run.json")) t.doesNotThrow(() => JSON.parse(text), file);
    else if (file.endsWith(".json") || file.endsWith(".log") || file.endsWith("/journal")) {
      const ls = text.split("\n");
      const last = ls.pop();
      t.equal(last, "", `${file} ends with a whole line`);
      for (const l of ls) if (l !== "") JSON.parse(l);
    }
  }
  t.ok(n > 0, `${n} files checked`);
}

t.test("kill -9 mid-task, between tasks and during a merge; restart; every run ends once", async (t) => {
  const dir = t.testdir({ marks: {} });
  const marks = join(dir, "marks");
  const root = join(dir, "root");
  const confPath = join(dir, "flows.yml");
  writeFileSync(confPath, conf(marks));

  // 1. mid-task: kill while "one" sleeps.
  let f = await start(root, confPath);
  const midTask = await trigger(f, "chain");
  await until(() => count(marks, `one-start ${midTask}`) === 1, 20_000, "one to start");
  const orphanPid = Number(readFileSync(join(marks, `one-${midTask}.pid`), "utf8"));
  const startedAt = ((await f.req("GET", `/runs/${midTask}`)).body as { startedAt?: number }).startedAt;
  await f.kill9();
  t.doesNotThrow(() => process.kill(orphanPid, 0), "the task outlived the killed host (until recovery)");

  // 2. restart: the orphan is killed, "one" runs again as a new attempt, the run ends good.
  f = await start(root, confPath);
  t.teardown(() => f.kill9());
  t.ok(startedAt !== undefined, "the run had started");
  // Its activation (host, start, workspace) is read back from its journal.
  t.equal(((await f.req("GET", `/runs/${midTask}`)).body as { startedAt?: number }).startedAt, startedAt, "its start time survives the crash");
  await until(() => isGone(orphanPid), 10_000, "the orphaned task to be killed");
  writeFileSync(join(marks, "release-one"), "");
  t.same(await ended(f, midTask), { result: "good", reason: 'end node "fin" reached by task.two.good' });
  t.equal(count(marks, `one-start ${midTask}`), 2, "one ran again after the crash");
  t.equal(count(marks, `two-start ${midTask}`), 1, "two ran once");
  const detail = (await f.req("GET", `/runs/${midTask}`)).body as { nodes: { id: string; attempts: number }[]; attempt: number };
  t.equal(detail.nodes.find((n) => n.id === "one")?.attempts, 2);

  // 3. between tasks: kill as soon as the host has recorded that "one" finished.
  const between = await trigger(f, "chain");
  const betweenJournal = join(root, "floes", "chain", "1", "active", between, "journal");
  await until(() => existsSync(betweenJournal) && readFileSync(betweenJournal, "utf8").includes('["one",{"t":"done"'), 20_000, "one to be recorded done");
  await f.kill9();
  f = await start(root, confPath);
  t.equal((await ended(f, between)).result, "good");
  t.equal(count(marks, `one-start ${between}`), 1, "a finished task is not run again");
  t.ok(count(marks, `two-end ${between}`) >= 1, "two ran");

  // 4. during a merge: fast done, slow running.
  const merge = await trigger(f, "fork");
  // fast's end must be on record: a task that exited but whose end was not yet recorded is
  // rightly run again after a crash (at least once), which is not what this step checks.
  const mergeJournal = join(root, "floes", "fork", "1", "active", merge, "journal");
  await until(() => count(marks, `slow-start ${merge}`) === 1 && existsSync(mergeJournal) && readFileSync(mergeJournal, "utf8").includes('["fast",{"t":"done"'), 20_000, "fast recorded done, slow started");
  await f.kill9();
  f = await start(root, confPath);
  writeFileSync(join(marks, "release-slow"), "");
  t.same(await ended(f, merge), { result: "good", reason: 'end node "fin" reached by merge.both.good' });
  t.equal(count(marks, `fast ${merge}`), 1, "fast did not run again");
  t.equal(count(marks, `slow-start ${merge}`), 2, "slow ran again");

  // 5. on-host-loss: fail ends the run lost, and its task never runs twice.
  const fragile = await trigger(f, "fragile");
  await until(() => count(marks, `fragile ${fragile}`) === 1, 20_000, "fragile to start");
  await f.kill9();
  f = await start(root, confPath);
  const lost = await ended(f, fragile);
  t.equal(lost.result, "lost");
  t.equal(count(marks, `fragile ${fragile}`), 1, "the task did not run again");

  // 6. pends survive a crash: adopted while no host can start them.
  const pend = await trigger(f, "gpu-only");
  await f.kill9();
  f = await start(root, confPath);
  const p = (await f.req("GET", `/runs/${pend}`)).body as { state: string; waiting?: string };
  t.equal(p.state, "pending", "the pend is still pending");
  await until(async () => ((await f.req("GET", `/runs/${pend}`)).body as { waiting?: string }).waiting === "no live host has tags [gpu]", 10_000, "its reason");
  const runs = ((await f.req("GET", "/runs?limit=100")).body as { runs: { ref: { run: string }; state: string }[] }).runs;
  t.equal(runs.filter((r) => r.state === "active").length, 0, "nothing left active");
  for (const id of [midTask, between, merge, fragile]) t.equal(runs.filter((r) => r.ref.run === id).length, 1, `run ${id} exists exactly once`);
  await f.stop();
  checkFiles(t, root);
});
