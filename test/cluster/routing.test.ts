/**
 * Three `floe` hosts on a real nats-server and redis-server: host-tag routing whichever host
 * received the trigger, a pend that waits for a host with the right tags and starts when one
 * joins, cluster-wide resource locks that never overlap (from timestamps the tasks write
 * themselves), runs without the lock proceeding meanwhile, runs visible on every host.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

type Summary = { ref: { run: string; execHost?: string }; state: string; result?: string; waiting?: string; reason?: string };

const ev = (dir: string) => join(dir, "evidence.log");

function conf(dir: string): string {
  return `
flows:
  - id: gpu-job
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: work, type: exec, listen: trigger.good, opts: {shell: 'echo "gpu $FLOE_RUN_ID $FLOE_HOST" >> ${ev(dir)}'}}
  - id: arm-job
    host-tags: [arm]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: work, type: exec, listen: trigger.good, opts: {shell: 'echo "arm $FLOE_RUN_ID $FLOE_HOST" >> ${ev(dir)}'}}
  - id: locked
    resource-tags: [db]
    triggers: [{name: go, type: data}]
    tasks:
      - name: migrate
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "start $FLOE_RUN_ID $HOST_NAME $(date +%s%N)" >> ${ev(dir)}; sleep 0.15; echo "end $FLOE_RUN_ID $HOST_NAME $(date +%s%N)" >> ${ev(dir)}'}
  - id: free
    triggers: [{name: go, type: data}]
    tasks:
      - {name: quick, type: exec, listen: trigger.good, opts: {shell: 'echo "free $FLOE_RUN_ID $HOST_NAME $(date +%s%N)" >> ${ev(dir)}'}}
`;
}

t.test("a three-host cluster: routing by host tags, waiting for a host, resource locks", async (t) => {
  const dir = t.testdir({});
  const c = await startCluster(t, { conf: conf(dir) });
  await Promise.all([c.start({ name: "h1", tags: ["linux"] }), c.start({ name: "h2", tags: ["linux"] }), c.start({ name: "h3", tags: ["linux", "gpu"] })]);
  await c.settle(["h1", "h2", "h3"]);

  const hosts = ((await c.host("h1").req("GET", "/hosts")).body as { hosts: { name: string; tags: string[]; up: boolean }[] }).hosts;
  t.same(hosts.map((h) => h.name).sort(), ["h1", "h2", "h3"], "GET /hosts on one host shows the whole cluster");

  // Host-tag routing: triggered on h1 and h2, run on h3, the only host with gpu.
  const gpuRuns: string[] = [];
  for (const via of ["h1", "h2", "h1", "h3"]) {
    const r = await c.host(via).req("POST", "/flows/gpu-job/runs", {});
    t.equal(r.status, 201, `trigger accepted by ${via}`);
    gpuRuns.push((r.body as { run: { ref: { run: string } } }).run.ref.run);
  }
  for (const run of gpuRuns) {
    await until(async () => ((await c.host("h2").req("GET", `/runs/${run}`)).body as Summary).state === "archived", 30_000, `gpu run ${run}`);
    const s = (await c.host("h2").req("GET", `/runs/${run}`)).body as Summary;
    t.equal(s.result, "good");
    t.equal(s.ref.execHost, "h3", "executed on h3, seen from h2");
  }
  const gpuLines = evidence(ev(dir)).filter((l) => l.startsWith("gpu "));
  t.equal(gpuLines.length, 4, "each gpu run ran once");
  t.ok(gpuLines.every((l) => l.endsWith(" h3")), "and only on h3 (the task says so itself)");

  // h3 keeps the definition it wrote for the first of them: another run of the same version,
  // adopted elsewhere, does not replace it (a new inode would show a rewrite).
  const flowYml = join(c.dir, "root-h3", "floes", "gpu-job", "1", "flow.yml");
  t.match(readFileSync(flowYml, "utf8"), /gpu-job/, "the executing host has the definition the runs ran with");
  const inode = statSync(flowYml).ino;
  const more = ((await c.host("h1").req("POST", "/flows/gpu-job/runs", {})).body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await c.host("h3").req("GET", `/runs/${more}`)).body as Summary).state === "archived", 30_000, `gpu run ${more}`);
  t.equal(statSync(flowYml).ino, inode, "not written again for a later run adopted by h1");

  // Logs of a run on h3, read through h1.
  const log = await c.host("h1").req("GET", `/runs/${gpuRuns[0]}/nodes/work/log`);
  t.equal(log.status, 200);

  // A flow no live host can run waits, with the reason, and starts when such a host joins.
  const armStart = await c.host("h2").req("POST", "/flows/arm-job/runs", {});
  t.equal(armStart.status, 201);
  const armRun = (armStart.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => /arm/.test(((await c.host("h1").req("GET", `/runs/${armRun}`)).body as Summary).waiting ?? ""), 20_000, "the arm pend to say why it waits");
  const waiting = ((await c.host("h1").req("GET", `/runs/${armRun}`)).body as Summary).waiting ?? "";
  t.match(waiting, /no live host has tags? .*arm/, `the reason is visible from another host: ${waiting}`);
  await c.start({ name: "h4", tags: ["arm"] });
  await until(async () => ((await c.host("h1").req("GET", `/runs/${armRun}`)).body as Summary).state === "archived", 30_000, "the arm run to end once h4 joined");
  t.ok(evidence(ev(dir)).some((l) => l === `arm ${armRun} h4`), "ran on the host that joined");

  // Cluster-wide lock: 20 runs on [db] triggered round-robin; 10 free runs meanwhile.
  const names = ["h1", "h2", "h3"];
  const locked: string[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await c.host(names[i % 3] as string).req("POST", "/flows/locked/runs", {});
    t.equal(r.status, 201);
    locked.push((r.body as { run: { ref: { run: string } } }).run.ref.run);
  }
  const free: string[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await c.host(names[i % 3] as string).req("POST", "/flows/free/runs", {});
    free.push((r.body as { run: { ref: { run: string } } }).run.ref.run);
  }
  await until(async () => {
    const list = ((await c.host("h3").req("GET", "/runs?flow=locked&limit=100")).body as { runs: Summary[] }).runs;
    return list.filter((s) => locked.includes(s.ref.run) && s.state === "archived").length === 20;
  }, 120_000, "20 locked runs to end");
  const lines = evidence(ev(dir));
  const spans = locked.map((run) => {
    const s = lines.find((l) => l.startsWith(`start ${run} `))?.split(" ");
    const e = lines.find((l) => l.startsWith(`end ${run} `))?.split(" ");
    return { run, host: s?.[2], from: BigInt(s?.[3] ?? "0"), to: BigInt(e?.[3] ?? "0") };
  });
  t.ok(spans.every((s) => s.from > 0n && s.to > s.from), "every locked run started and ended once");
  t.equal(lines.filter((l) => l.startsWith("start ")).length, 20, "no locked run ran twice");
  spans.sort((a, b) => (a.from < b.from ? -1 : 1));
  let overlaps = 0;
  for (let i = 1; i < spans.length; i++) if ((spans[i]?.from ?? 0n) < (spans[i - 1]?.to ?? 0n)) overlaps++;
  t.equal(overlaps, 0, "no two runs holding db overlapped");
  t.ok(new Set(spans.map((s) => s.host)).size >= 2, `the lock was held on several hosts (${[...new Set(spans.map((s) => s.host))].join(", ")})`);
  const freeDone = lines.filter((l) => l.startsWith("free ")).map((l) => BigInt(l.split(" ")[3] ?? "0"));
  const lastLocked = spans[spans.length - 1]?.from ?? 0n;
  t.equal(freeDone.length, 10, "the free runs all ran");
  t.ok(freeDone.some((at) => at < lastLocked), "runs without the tag were not held back behind the lock");
  // A host that died: its runs, their nodes and their logs are still there, from any host.
  await c.kill9("h3");
  const dead = await c.host("h1").req("GET", `/runs/${gpuRuns[1]}`);
  t.equal((dead.body as Summary).result, "good", "a run of the dead host h3 is still shown");
  const deadLog = await c.host("h2").req("GET", `/runs/${gpuRuns[1]}/nodes/work/log`);
  t.equal(deadLog.status, 200);
  const texts = ((deadLog.body as { lines?: { text: string }[] }).lines ?? []).map((l) => l.text);
  t.ok(texts.some((x) => x.includes(`echo "gpu $FLOE_RUN_ID $FLOE_HOST"`)), "and its log, read from the event stream after h3 died");
  const sorted = [...locked].sort();
  t.ok(spans.slice(0, 3).every((s) => sorted.slice(0, 6).includes(s.run)), "roughly first adopted, first served");
});
