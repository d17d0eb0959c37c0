/**
 * A host whose wall clock jumps forward and back by minutes (libfaketime stepping only the
 * realtime clock, as a bad NTP sync or an operator does; the monotonic clock runs on):
 * timers and cron still fire once per tick on the cluster's schedule (Redis's clock), the
 * run it executes through the jumps keeps its lease and lock and ends once, and every
 * time in the API is the cluster's: no run stamped minutes away, no negative duration.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

interface Summary {
  ref: { run: string; flow: string; execHost?: string };
  state: string;
  result?: string;
  reason?: string;
  attempt: number;
  adoptedAt: number;
  startedAt?: number;
  endedAt?: number;
}

const CONF = `
flows:
  - id: tick
    triggers: [{name: every-2s, type: timer, opts: {period: 2}}]
    tasks: [{name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
  - id: cron3
    triggers: [{name: every-3s, type: cron, opts: {cron: "*/3 * * * * *"}}]
    tasks: [{name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
  - id: locked
    host-tags: [stepped]
    resource-tags: [db]
    on-host-loss: fail
    triggers: [{name: go, type: data}]
    tasks: [{name: hold, type: exec, listen: trigger.good, opts: {shell: 'sleep 9'}}]
`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test("a host's wall clock stepped by ±5 minutes: schedules, leases, locks and run times hold", { skip: existsSync(LIBFAKETIME) ? false : `libfaketime is not installed (${LIBFAKETIME}); npm test's setup installs it (apt-get install faketime)` }, async (t) => {
  const c = await startCluster(t, { conf: CONF, leaseS: 3 });
  const offset = join(c.dir, "faketime-offset");
  writeFileSync(offset, "+0\n");
  await c.start({ name: "h1" });
  await c.start({
    name: "h2",
    tags: ["stepped"],
    env: { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: offset, FAKETIME_NO_CACHE: "1", FAKETIME_DONT_FAKE_MONOTONIC: "1" },
  });
  await c.settle(["h1", "h2"]);
  const h1 = c.host("h1");

  const locked = await h1.req("POST", "/flows/locked/runs", {});
  t.equal(locked.status, 201);
  const lockedRun = (locked.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await h1.req("GET", `/runs/${lockedRun}`)).body as Summary).state === "active", 20_000, "the locked run to start on h2");

  const from = Date.now();
  await sleep(2500);
  writeFileSync(offset, "+5m\n"); // h2's wall clock jumps five minutes ahead…
  await sleep(5000);
  writeFileSync(offset, "-5m\n"); // …then ten minutes back, five behind the others…
  await sleep(5000);
  writeFileSync(offset, "+0\n"); // …then right again.
  await sleep(2500);
  const to = Date.now();

  const runs = async (flow: string): Promise<Summary[]> => ((await h1.req("GET", `/runs?flow=${flow}&limit=500`)).body as { runs: Summary[] }).runs;
  const all = [...(await runs("tick")), ...(await runs("cron3")), ...(await runs("locked"))];
  const sane = (x: number | undefined): boolean => x === undefined || (x > from - 60_000 && x < Date.now() + 5_000);
  t.same(all.filter((r) => !sane(r.adoptedAt) || !sane(r.startedAt) || !sane(r.endedAt)).map((r) => [r.ref.flow, r.ref.execHost, r.adoptedAt, r.startedAt, r.endedAt]), [], "every run's times on the cluster's clock, none minutes away");
  t.same(all.filter((r) => r.startedAt !== undefined && r.endedAt !== undefined && r.endedAt < r.startedAt).map((r) => r.ref.run), [], "no run ended before it started");

  for (const [flow, periodMs] of [["tick", 2000], ["cron3", 3000]] as const) {
    const adopted = (await runs(flow)).map((r) => r.adoptedAt).filter((a) => a >= from && a <= to).sort((a, b) => a - b);
    const slots = Math.floor((to - from) / periodMs);
    t.ok(adopted.length >= slots - 1 && adopted.length <= slots + 1, `${flow}: ${adopted.length} runs in ${to - from} ms, one per ${periodMs} ms slot (${slots})`);
    const gaps = adopted.slice(1).map((a, i) => a - (adopted[i] as number));
    t.same(gaps.filter((g) => g < periodMs / 2), [], `${flow}: no slot fired twice, none early (gaps ${gaps.join(", ")} ms)`);
  }

  // The locked run held its lease and lock through the jumps: one attempt, on h2, ended good.
  await until(async () => ((await h1.req("GET", `/runs/${lockedRun}`)).body as Summary).state === "archived", 30_000, "the locked run to end");
  const l = (await h1.req("GET", `/runs/${lockedRun}`)).body as Summary & { nodes: { id: string; startedAt?: number; endedAt?: number }[] };
  t.equal(l.result, "good", l.reason ?? "");
  t.equal(l.attempt, 1, "never reaped: one attempt");
  t.equal(l.ref.execHost, "h2");
  const took = (l.endedAt ?? 0) - (l.startedAt ?? 0);
  t.ok(took >= 8_500 && took < 30_000, `its time is the task's 9 s, not ±5 minutes (${took} ms)`);
  const hold = l.nodes.find((n) => n.id === "hold");
  t.ok(hold?.startedAt !== undefined && hold.endedAt !== undefined && hold.endedAt - hold.startedAt >= 8_500 && hold.endedAt - hold.startedAt < 30_000, "the node's times too");
  const hosts = ((await h1.req("GET", "/hosts")).body as { hosts: { name: string; up: boolean }[] }).hosts;
  t.same(hosts.filter((h) => !h.up).map((h) => h.name), [], "both hosts up: no lease lost to the jumps");
});
