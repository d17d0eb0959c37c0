/** The operators' commands against one host of a cluster, for a run that executes on another. */
import { spawn } from "node:child_process";
import t from "tap";
import { startCluster } from "../helpers/cluster.js";
import { floeBin } from "../helpers/paths.js";

function cli(args: readonly string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [floeBin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const CONF = `
flows:
  - id: remote
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: work, type: exec, listen: trigger.good, opts: {shell: 'echo "on $FLOE_HOST"; sleep 0.3; echo done'}}
`;

t.test("trigger --follow, runs and logs through h1 for a run that executes on h2", async (t) => {
  const c = await startCluster(t, { conf: CONF });
  const h1 = await c.start({ name: "h1" });
  await c.start({ name: "h2", tags: ["gpu"] });
  await c.settle(["h1", "h2"]);
  const env = { FLOE_SERVER: h1.url, FLOE_TOKEN: h1.token };
  const r = await cli(["trigger", "remote", "--follow"], env);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /\[remote\.work\] on h2$/m, "the output of the run on h2, streamed through h1");
  t.match(r.stdout, /\[remote\.work\] done$/m);
  const run = /started run ([0-9A-Z]{26})/.exec(r.stderr)?.[1] ?? "";
  const runs = await cli(["runs", "--flow=remote"], env);
  t.match(runs.stdout, new RegExp(`^good\\t${run}\\tremote/1\\t.*\\th2\\t`, "m"));
  const logs = await cli(["logs", run, "work"], env);
  t.equal(logs.status, 0, logs.stderr);
  t.match(logs.stdout, /\[remote\.work\] on h2$/m);
});
