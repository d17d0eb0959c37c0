/**
 * The spawn helper of a real `floe serve` process: it spawns the host's tasks, shrugs off
 * the SIGINT a terminal sends to the whole group, leaves when its host is killed with -9
 * (killing the task it was running),
 * and when it dies itself the task it ran is killed and fails with a reason, and the next
 * task gets a new helper.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

const conf = (gate: string) => `
flows:
  - id: quick
    triggers: [{name: go, type: data}]
    tasks:
      - {name: say, type: exec, listen: trigger.good, opts: {cmd: "echo hello"}}
  - id: slow
    triggers: [{name: go, type: data}]
    tasks:
      - {name: wait, type: exec, listen: trigger.good, opts: {shell: 'while [ ! -f ${gate} ]; do sleep 0.05; done'}}
`;

/** Pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push({ pid: Number(d), cmd: readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ") });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

t.test("the spawn helper: spawns, ignores SIGINT, dies with its host, is replaced when it dies", async (t) => {
  const dir = t.testdir({});
  const gate = join(dir, "gate");
  const file = join(dir, "flows.yml");
  writeFileSync(file, conf(gate));
  const floe = await startFloe({ conf: file, root: join(dir, "root") });
  t.teardown(() => floe.kill9());
  const run = async (flow: string): Promise<string> => {
    const r = await floe.req("POST", `/flows/${flow}/runs`, {});
    return (r.body as { run: { ref: { run: string } } }).run.ref.run;
  };
  const result = async (id: string): Promise<{ result?: string; nodes: { id: string; state: string }[] }> => {
    let body: { state?: string; result?: string; nodes: { id: string; state: string }[] } = { nodes: [] };
    await until(async () => {
      body = (await floe.req("GET", `/runs/${id}`)).body as typeof body;
      return body.state === "archived";
    }, 20_000, `run ${id} to end`);
    return body;
  };

  t.equal((await result(await run("quick"))).result, "good");
  const hostPid = floe.child.pid as number;
  const helpers = () => childrenOf(hostPid).filter((c) => /spawn-helper/.test(c.cmd));
  t.equal(helpers().length, 1, "the host has one spawn helper");
  const first = helpers()[0]?.pid as number;

  process.kill(first, "SIGINT");
  t.equal((await result(await run("quick"))).result, "good", "a SIGINT to the group does not stop the helper");
  t.ok(alive(first), "the same helper is still there");

  // The helper dies while a task runs: that task fails with a reason, the next one runs.
  const slow = await run("slow");
  await until(async () => ((await floe.req("GET", `/runs/${slow}`)).body as { state?: string }).state === "active", 20_000, "slow to start");
  await until(() => childrenOf(first).length > 0, 20_000, "the helper to have spawned the slow task");
  const task = childrenOf(first)[0]?.pid as number;
  process.kill(first, "SIGKILL");
  const r = await result(slow);
  await until(() => !alive(task), 20_000, "the orphaned task to be killed");
  t.equal(r.result, "bad", "the task whose helper died fails");
  const log = (await floe.req("GET", `/runs/${slow}/nodes/wait/log`)).body as { lines: { text: string }[] };
  t.match(log.lines.map((l) => l.text).join("\n"), /spawn helper failed/, "and says why");
  t.equal((await result(await run("quick"))).result, "good", "a new helper runs the next task");
  const second = helpers()[0]?.pid as number;
  t.not(second, first);

  // kill -9 of the host while a task runs: the task goes with it (its run is the cluster's
  // to requeue; left running it would overlap the next attempt).
  const last = await run("slow");
  await until(() => childrenOf(second).length > 0, 20_000, "the helper to spawn the last slow task");
  const orphan = childrenOf(second)[0]?.pid as number;
  await floe.kill9();
  await until(() => !alive(second), 20_000, "the helper to leave after its host was killed with -9");
  await until(() => !alive(orphan), 20_000, "the host's running task to be killed with it");
  t.pass(`the helper left with its host, and took run ${last}'s task with it`);
});
