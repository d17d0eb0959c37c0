/**
 * A run's end in a cluster costs Redis one round trip (issue "cluster at scale"): the run's
 * last writes of the run index — its archived summary and what of it was not sent yet — go
 * with its release, applied only if that commits, not in an index batch of their own; and its
 * first, the pending entry, goes with its pend.
 * Watched with MONITOR on
 * the cluster's own redis-server, with real `floe serve` hosts.
 */
import { Redis } from "ioredis";
import t from "tap";
import { SCRIPTS } from "../../store/redis-scripts.js";
import { startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

const CONF = `
flows:
  - id: quick
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`;

interface View {
  readonly state: string;
  readonly result?: string;
  readonly ref: { readonly execHost?: string };
  readonly nodes: readonly { readonly class: string; readonly state: string }[];
}

interface Sent {
  readonly script: string;
  readonly args: readonly string[];
}

t.test("a run's end: its archived index entry rides with the release; no index batch after it", async (t) => {
  const c = await startCluster(t, { conf: CONF });
  await c.start({ name: "h1" });
  await c.start({ name: "h2" });
  await c.settle(["h1", "h2"]);
  // A run ended on each host first: a host's first call of a script meets NOSCRIPT and is sent
  // again after a SCRIPT LOAD (lua-script.ts), which MONITOR would show as two calls.
  for (const h of ["h1", "h2"]) {
    const r = await c.host(h).req("POST", "/flows/quick/runs", {});
    const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
    await until(async () => ((await c.host(h).req("GET", `/runs/${run}`)).body as { state?: string }).state === "archived", 30_000, "a first run to end");
  }
  const names = new Map(Object.values(SCRIPTS).map((s) => [s.sha, s.name]));
  const sent: Sent[] = [];
  const watcher = new Redis(c.redis.url, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  const mon = await watcher.monitor();
  t.teardown(() => {
    mon.disconnect();
    watcher.disconnect();
  });
  mon.on("monitor", (_time: string, args: string[], source: string) => {
    if (source.includes("lua") || (args[0] ?? "").toLowerCase() !== "evalsha") return;
    sent.push({ script: names.get(args[1] ?? "") ?? "?", args });
  });
  const runs: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await c.host(i % 2 === 0 ? "h1" : "h2").req("POST", "/flows/quick/runs", {});
    t.equal(r.status, 201);
    runs.push((r.body as { run: { ref: { run: string } } }).run.ref.run);
    await until(async () => ((await c.host("h1").req("GET", `/runs/${runs[i]}`)).body as { state?: string }).state === "archived", 30_000, `run ${i} to end`);
  }
  for (const run of runs) {
    const at = ((await c.host("h1").req("GET", `/runs/${run}`)).body as View).ref.execHost;
    // The host that did not run it reads the run index.
    const view = (await c.host(at === "h1" ? "h2" : "h1").req("GET", `/runs/${run}`)).body as View;
    t.same([view.state, view.result, view.nodes.filter((n) => n.class === "task").map((n) => n.state)], ["archived", "good", ["good"]], `${run}: archived, good, its task's status ended, as another host reads the index`);
    const mine = sent.filter((s) => s.args.includes(run));
    const releases = mine.filter((s) => s.script === "release");
    // (The same call twice would be a NOSCRIPT retry or a retry after a lost reply: one release.)
    t.equal(new Set(releases.map((r) => r.args.join("\0"))).size, 1, `${run}: one release`);
    t.ok(releases[0]?.args.includes("archived"), `${run}: its archived summary went with the release`);
    const release = sent.indexOf(releases[0] as Sent);
    const batchesAfter = sent.slice(release + 1).filter((s) => s.script === "indexBatch" && s.args.includes(run));
    t.same(batchesAfter.map((s) => s.script), [], `${run}: no index batch of its own after the release`);
    const adds = mine.filter((s) => s.script === "addPend");
    t.ok(adds.length >= 1 && adds.every((s) => s.args.includes("pending")), `${run}: its pending index entry went with its pend`);
    // (Its active summary and node statuses may go in a batch of the mirror's window while it runs.)
    const carries = (x: Sent, state: string): boolean => x.args.some((a, i) => a === "r" && x.args[i + 1] === run && x.args[i + 3] === state);
    t.same(mine.filter((x) => x.script === "indexBatch" && (carries(x, "pending") || carries(x, "archived"))).length, 0, `${run}: no index batch carries its pending or archived entry`);
  }
});
