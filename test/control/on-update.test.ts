/**
 * `on-update` after a SIGHUP reload, in a cluster of two real hosts that reload at different
 * times: only h1 gets the new file. The newest reload wins cluster-wide: h2, still on the old
 * file, aborts its runs of the old definition too (abort) and adopts new triggers with the
 * new definition; a drained flow's new run waits, pending with the reason, until the old
 * definition's run in flight has ended, then runs the new definition.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster } from "../helpers/cluster.js";
import type { FloeProcess } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

interface Run {
  ref: { run: string; execHost?: string };
  state: string;
  result?: string;
  reason?: string;
  waiting?: string;
  def?: string;
}

const get = async (p: FloeProcess, id: string): Promise<Run> => (await p.req("GET", `/runs/${id}`)).body as Run;
const start = async (p: FloeProcess, flow: string): Promise<string> => {
  const r = await p.req("POST", `/flows/${flow}/runs`, {});
  if (r.status !== 201) throw new Error(`trigger ${flow}: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { run: { ref: { run: string } } }).run.ref.run;
};

t.test("abort and drain after a SIGHUP reload with runs in flight, two hosts", async (t) => {
  const dir = t.testdir({});
  const trail = join(dir, "trail");
  const gate = join(dir, "gate");
  const conf = (v: number) => `
flows:
  - id: up
    on-update: abort
    triggers: [{name: go, type: data}]
    tasks:
      - {name: work, type: exec, listen: trigger.good, opts: {shell: 'echo "up v${v} $FLOE_HOST" >> ${trail}; while [ ! -f ${gate} ]; do sleep 0.05; done'}}
  - id: dr
    on-update: drain
    host-tags: [drainer]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: work, type: exec, listen: trigger.good, opts: {shell: 'echo "dr v${v} $FLOE_HOST" >> ${trail}; while [ ! -f ${gate}-dr ]; do sleep 0.05; done'}}
`;
  const c = await startCluster(t, { conf: conf(1) });
  const h1 = await c.start({ name: "h1", slots: 1 });
  const h2 = await c.start({ name: "h2", slots: 2, tags: ["drainer"] });
  await c.settle(["h1", "h2"]);

  // Three runs of the old definition in flight, filling both hosts' slots: dr on h2 (its
  // tag), then one up run on each host.
  const old = await start(h1, "dr");
  await until(async () => evidence(trail).length === 1, 30_000, "the dr run in flight");
  const ups = [await start(h1, "up"), await start(h2, "up")];
  await until(async () => evidence(trail).length === 3, 30_000, "three runs in flight");
  // h1 sees h2's run through the cluster's run index, whose writes of a run's progress go
  // out in batches (within 50 ms): wait for both runs to show where they run.
  let hosts = new Set<string | undefined>();
  await until(async () => {
    hosts = new Set(await Promise.all(ups.map(async (r) => (await get(h1, r)).ref?.execHost)));
    return !hosts.has(undefined);
  }, 10_000, "h1 to see where both up runs run");
  t.same([...hosts].sort(), ["h1", "h2"], "an up run of the old definition on each host");

  // Only h1 reloads: its file changed.
  writeFileSync(c.conf, conf(2));
  h1.child.kill("SIGHUP");

  // abort: the runs of the old definition end cancelled, on both hosts.
  for (const r of ups) {
    await until(async () => (await get(h1, r)).state === "archived", 30_000, `up run ${r} aborted`);
    const s = await get(h1, r);
    t.equal(s.result, "cancelled");
    t.match(s.reason ?? "", /^flow updated to version 1 \(definition [0-9a-f]{12}\)/, `reason: ${s.reason}`);
  }

  // drain: a new trigger waits while the old definition's run is in flight.
  const fresh = await start(h2, "dr");
  await until(async () => (await get(h1, fresh)).waiting === "draining runs of the previous definition", 30_000, "the new dr run held as draining");
  t.equal((await get(h1, old)).state, "active", "the old run goes on");
  writeFileSync(`${gate}-dr`, "");
  await until(async () => (await get(h1, old)).state === "archived", 30_000, "the old dr run ends");
  t.equal((await get(h1, old)).result, "good", "drain lets the old run finish");
  await until(async () => (await get(h1, fresh)).state === "archived", 30_000, "the new dr run runs after the old one");
  t.equal((await get(h1, fresh)).result, "good");
  const dr = evidence(trail).filter((l) => l.startsWith("dr "));
  t.equal(dr.length, 2);
  t.match(dr[1] ?? "", /^dr v2 /, "the held run ran the new definition");

  // The newest reload wins: h2, still with the old file, adopts with the new definition.
  writeFileSync(gate, "");
  const later = await start(h2, "up");
  await until(async () => (await get(h2, later)).state === "archived", 30_000, "a new up run");
  t.equal((await get(h2, later)).result, "good");
  t.match(evidence(trail).at(-1) ?? "", /^up v2 /, "h2 ran the new definition, not its own file's");
  t.not((await get(h2, later)).def, (await get(h2, ups[0] as string)).def, "its definition hash is the new one");
});
