/**
 * Acting on a run from a host that does not execute it: a data form filled through h1
 * reaches the run on h2 (the only gpu host) and the run goes on; a cancel sent to h1 ends a
 * long task on h2; a form for a run that has ended is refused with its code, through any host.
 */
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

type Detail = { ref: { run: string; execHost?: string }; state: string; result?: string; reason?: string; nodes: { id: string; state: string; enabled?: boolean }[] };

t.test("a data form and a cancel sent to one host reach the run on another", async (t) => {
  const dir = t.testdir({});
  const ev = join(dir, "evidence.log");
  const c = await startCluster(t, {
    conf: `
flows:
  - id: ask
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: approve, type: data, listen: trigger.good, opts: {form: {title: Go on?, fields: [{id: note, prompt: Note, type: string}]}}}
      - {name: act, type: exec, listen: task.approve.good, opts: {shell: 'echo "approved $NOTE on $FLOE_HOST" >> ${ev}'}}
  - id: long
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: wait, type: exec, listen: trigger.good, opts: {shell: 'echo "long started on $FLOE_HOST" >> ${ev}; sleep 60; echo "long finished" >> ${ev}'}}
`,
  });
  await Promise.all([c.start({ name: "h1", tags: ["linux"] }), c.start({ name: "h2", tags: ["gpu"] })]);
  await c.settle(["h1", "h2"]);
  const h1 = c.host("h1");
  const detail = async (run: string) => (await h1.req("GET", `/runs/${run}`)).body as Detail;

  const a = await h1.req("POST", "/flows/ask/runs", {});
  t.equal(a.status, 201);
  const ask = (a.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => (await detail(ask)).nodes.some((n) => n.id === "approve" && n.enabled === true), 20_000, "the data node to wait for input on h2");
  t.equal((await detail(ask)).ref.execHost, "h2");
  const filled = await h1.req("POST", `/runs/${ask}/nodes/approve/data`, { values: { note: "ship-it; $(touch pwned)" } });
  t.equal(filled.status, 200, `form accepted through h1: ${JSON.stringify(filled.body)}`);
  await until(async () => (await detail(ask)).state === "archived", 20_000, "the run to end");
  t.equal((await detail(ask)).result, "good");
  t.same(evidence(ev).filter((l) => l.startsWith("approved")), ["approved ship-it; $(touch pwned) on h2"], "the value reached the task on h2, verbatim");
  const again = await h1.req("POST", `/runs/${ask}/nodes/approve/data`, { values: { note: "late" } });
  t.equal(again.status, 409, "a form for an ended run is refused");
  t.equal((again.body as { error: { code: string } }).error.code, "E_RUN_ENDED");

  const l = await h1.req("POST", "/flows/long/runs", {});
  const long = (l.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(() => evidence(ev).includes("long started on h2"), 20_000, "the long task to start on h2");
  const cancelled = await h1.req("POST", `/runs/${long}/cancel`, {});
  t.equal(cancelled.status, 200, `cancel accepted through h1: ${JSON.stringify(cancelled.body)}`);
  await until(async () => (await detail(long)).state === "archived", 20_000, "the cancelled run to end");
  t.equal((await detail(long)).result, "cancelled");
  t.notOk(evidence(ev).includes("long finished"), "the task was killed, not left to finish");
});
