/**
 * A run looks the same through every host of a real two-host cluster: GET /runs/:id through
 * the host that runs it (its own executor and files) and through the other (the shared run
 * index, filled in from the run's flow) lists the same nodes — the trigger that started it,
 * the nodes not yet reached — in the flow's order and in the same states, while the run is
 * live and after it ended.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { evidence, startCluster, type Cluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

type Detail = { state: string; result?: string; attempt: number; ref: { execHost?: string }; nodes: { id: string; state: string }[] };

function conf(dir: string): string {
  const ev = join(dir, "evidence.log");
  return `
flows:
  - id: view
    triggers: [{name: go, type: data}, {name: other, type: data}]
    tasks:
      - {name: first, type: exec, listen: trigger.good, opts: {shell: 'echo "first $FLOE_RUN_ID $HOST_NAME" >> ${ev}; while [ ! -f ${dir}/go ]; do sleep 0.05; done'}}
      - {name: second, type: exec, listen: task.first.good, opts: {shell: 'echo second'}}
      - {name: on-fail, type: exec, listen: task.first.bad, opts: {shell: 'echo never'}}
      - {name: both, class: merge, type: all, wait: [task.first.good, task.second.good]}
      - {name: done, type: end, listen: merge.both.good}
`;
}

/** What a host shows of a run's nodes: ids in order, each with its state. */
async function view(c: Cluster, via: string, run: string): Promise<{ run: string; nodes: string[] }> {
  const d = (await c.host(via).req("GET", `/runs/${run}`)).body as Detail;
  return { run: `${d.state}/${d.result ?? "-"}/attempt ${d.attempt}`, nodes: d.nodes.map((n) => `${n.id}:${n.state}`) };
}

/** Waits (for news to reach the index) until both hosts show the same, then compares them. */
async function sameThroughBoth(t: Test, c: Cluster, run: string, exec: string, other: string, when: string): Promise<void> {
  await until(async () => JSON.stringify(await view(c, exec, run)) === JSON.stringify(await view(c, other, run)), 10_000, `both hosts to show the run alike ${when}`).catch(() => undefined);
  t.same(await view(c, other, run), await view(c, exec, run), `${when}: through ${other} as through ${exec}`);
}

t.test("GET /runs/:id gives the same nodes, in the same order and states, through either host", async (t) => {
  const dir = t.testdir({});
  const ev = join(dir, "evidence.log");
  const c = await startCluster(t, { conf: conf(dir) });
  await Promise.all([c.start({ name: "h1" }), c.start({ name: "h2" })]);
  await c.settle(["h1", "h2"]);
  const r = await c.host("h1").req("POST", "/flows/view/runs", { trigger: "go" });
  t.equal(r.status, 201);
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(() => evidence(ev).some((l) => l.startsWith(`first ${run} `)), 30_000, "the first task to start");
  const exec = evidence(ev).find((l) => l.startsWith(`first ${run} `))?.split(" ")[2] ?? "";
  const other = exec === "h1" ? "h2" : "h1";
  t.comment(`runs on ${exec}; read through ${other} too`);

  const live = await view(c, exec, run);
  t.same(live.nodes, ["go:good", "other:good", "first:running", "second:waiting", "on-fail:waiting", "both:waiting", "done:waiting"], "the executing host: every node of the flow, in its order");
  await sameThroughBoth(t, c, run, exec, other, "live");

  writeFileSync(join(dir, "go"), "");
  await until(async () => (await view(c, exec, run)).run.startsWith("archived"), 30_000, "the run to end");
  t.same((await view(c, exec, run)).nodes, ["go:good", "other:good", "first:good", "second:good", "on-fail:skipped", "both:good", "done:good"], "the executing host, ended");
  await sameThroughBoth(t, c, run, exec, other, "ended");
});
