/**
 * A run triggered on a host right after another host was killed with -9: the pass may pick
 * the dead host (its lease has not lapsed yet) and wake it; once the dead host is reaped the
 * run must go to a live host within a lease or so, not wait for ever.
 */
import t from "tap";
import { startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

const CONF = `
flows:
  - id: quick
    triggers: [{name: go, type: data}]
    tasks: [{name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
`;

t.test("runs triggered just after a host was killed start on a live host", async (t) => {
  const c = await startCluster(t, { conf: CONF, leaseS: 2 });
  await c.start({ name: "h1" });
  await c.start({ name: "h2" });
  await c.settle(["h1", "h2"]);
  const h2 = c.host("h2");
  await c.kill9("h1");
  const runs: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await h2.req("POST", "/flows/quick/runs", {});
    t.equal(r.status, 201);
    runs.push((r.body as { run: { ref: { run: string } } }).run.ref.run);
  }
  const started = Date.now();
  for (const run of runs) {
    await until(async () => ((await h2.req("GET", `/runs/${run}`)).body as { state: string }).state === "archived", 30_000, `run ${run} to end on h2`);
  }
  t.ok(Date.now() - started < 30_000, `all ended within ${Date.now() - started} ms`);
});
