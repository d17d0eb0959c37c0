/**
 * A paused run stays paused across a requeue after the loss of its host: kill -9 of the host
 * running a paused run; the other host runs the new attempt, paused — its first task held
 * until the run is resumed (through any host), then the run finishes there.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

interface Run {
  ref: { run: string; execHost?: string };
  state: string;
  result?: string;
  attempt: number;
  paused?: boolean;
  pausedBy?: string;
  nodes?: { id: string; state: string; reason?: string }[];
}

t.test("a paused run is still paused in its new attempt after its host was lost", async (t) => {
  // Not tap's fixture dir: the task h1 leaves behind still looks for its end file there.
  const marker = join(mkdtempSync(join(tmpdir(), "floe-pause-requeue-")), "ran");
  // The task h1 left running when it was killed ends with the test.
  t.teardown(() => writeFileSync(`${marker}.end`, ""));
  const c = await startCluster(t, {
    conf: `
flows:
  - id: pr
    triggers: [{name: go, type: data}]
    tasks:
      - {name: one, type: exec, listen: trigger.good, opts: {shell: 'echo "one $FLOE_HOST $FLOE_ATTEMPT" >> ${marker}; while [ ! -f ${marker}.end ]; do sleep 0.1; done'}}
      - {name: two, type: exec, listen: task.one.good, opts: {shell: 'echo "two $FLOE_HOST" >> ${marker}'}}
`,
  });
  const h1 = await c.start({ name: "h1" });
  const started = await h1.req("POST", "/flows/pr/runs", {});
  const id = (started.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => evidence(marker).length === 1, 30_000, "task one running on h1");
  const h2 = await c.start({ name: "h2" });
  await c.settle(["h1", "h2"]);
  // Paused through the other host: the request goes to the host that runs it.
  const paused = await h2.req("POST", `/runs/${id}/pause`);
  t.equal(paused.status, 200, JSON.stringify(paused.body));
  t.match(paused.body, { run: { paused: true } });

  await c.kill9("h1");
  await until(async () => {
    const r = (await h2.req("GET", `/runs/${id}`)).body as Run;
    return r.attempt === 2 && r.state === "active" && r.nodes?.find((n) => n.id === "one")?.reason?.startsWith("paused") === true;
  }, 60_000, "attempt 2 active on h2, its first task held");
  const held = (await h2.req("GET", `/runs/${id}`)).body as Run;
  t.equal(held.ref.execHost, "h2");
  t.equal(held.paused, true, "still paused after the requeue");
  t.equal(held.pausedBy, "admin");
  t.same(evidence(marker), ["one h1 1"], "nothing ran in the new attempt while paused");

  t.equal((await h2.req("POST", `/runs/${id}/resume`)).status, 200);
  await until(async () => evidence(marker).length === 2, 30_000, "task one started again after the resume");
  t.same(evidence(marker), ["one h1 1", "one h2 2"]);
  t.equal((await h2.req("POST", `/runs/${id}/cancel`)).status, 200);
});
