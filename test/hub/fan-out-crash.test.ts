/**
 * kill -9 of a floe process in the middle of a fan-out, then a restart: the instances that
 * had ended are not run again, the ones that were running (and those not yet started) run,
 * and the task ends once with every instance listed.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter((l) => l !== "") : []);

t.test("kill -9 mid fan-out: a restart runs only the instances that had not ended", async (t) => {
  const dir = t.testdir({ marks: {} });
  const marks = join(dir, "marks");
  const root = join(dir, "root");
  const confPath = join(dir, "flows.yml");
  // Items 1 and 2 end at once; 3 and 4 wait for a release file; 5 and 6 wait for a free lane.
  writeFileSync(
    confPath,
    `
flows:
  - id: fan
    triggers: [{name: go, type: data}]
    tasks:
      - name: each
        type: exec
        listen: trigger.good
        for-each: [1, 2, 3, 4, 5, 6]
        parallel: 2
        opts: {shell: 'echo "$FLOE_ITEM" >> ${marks}/started; if [ "$FLOE_ITEM" -ge 3 ]; then while [ ! -f ${marks}/release ]; do sleep 0.05; done; fi; echo "$FLOE_ITEM" >> ${marks}/ended'}
      - name: after
        type: exec
        listen: task.each.good
        opts: {shell: 'echo once >> ${marks}/after'}
      - {name: fin, type: end, listen: task.after.good}
`,
  );
  let f = await startFloe({ conf: confPath, root });
  const res = await f.req("POST", "/flows/fan/runs", {});
  t.equal(res.status, 201);
  const run = (res.body as { run: { ref: { run: string } } }).run.ref.run;
  // Instances 3 and 4 run (blocked); 1 and 2 ended; their ends are in the journal.
  await until(() => lines(join(marks, "started")).length === 4, 20_000, "instances 3 and 4 to be running");
  const journal = join(root, "floes", "fan", "1", "active", run, "journal");
  await until(() => existsSync(journal) && (readFileSync(journal, "utf8").match(/"t":"inst"[^\n]*"state":"good"/g) ?? []).length === 2, 20_000, "the ends of 1 and 2 to be recorded");
  await f.kill9();

  writeFileSync(join(marks, "release"), "");
  f = await startFloe({ conf: confPath, root });
  t.teardown(() => f.kill9());
  let last: { state?: string; result?: string; reason?: string; nodes?: { id: string; instances?: { name: string; state: string }[] }[] } = {};
  await until(async () => {
    last = (await f.req("GET", `/runs/${run}`)).body as typeof last;
    return last.state === "archived";
  }, 30_000, "the run to end");
  t.equal(last.result, "good", last.reason ?? "");
  const started = lines(join(marks, "started"));
  t.same(started.filter((x) => x === "1" || x === "2").sort(), ["1", "2"], "the instances that had ended did not run again: each started once");
  t.same(started.filter((x) => x === "3").length, 2, "an instance killed by the crash ran again");
  t.same(started.filter((x) => x === "5").length, 1, "an instance not yet started ran once");
  t.same(lines(join(marks, "ended")).sort(), ["1", "2", "3", "4", "5", "6"], "every instance ended once");
  t.same(lines(join(marks, "after")), ["once"], "the task emitted one event");
  const each = last.nodes?.find((n) => n.id === "each");
  t.same(each?.instances?.map((i) => [i.name, i.state]), [["1", "good"], ["2", "good"], ["3", "good"], ["4", "good"], ["5", "good"], ["6", "good"]]);
});
