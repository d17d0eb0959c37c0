/**
 * README, "A cluster": the Procfile walkthrough as written. `npx nf start` (foreman) runs
 * the repository's Procfile in a temporary directory (dist/, flows/ and node_modules/
 * linked in, so `.floe-cluster/` is made there), with every port moved to a free one
 * through the FLOE_DEV_*_PORT variables the Procfile reads. The blocks marked
 * `<!-- test: cluster-… -->` then run in one bash session in that directory, as a reader
 * would paste them, with 8081–8083 replaced by the hosts' ports. Checked: what each block
 * says it shows, and from the API what it promises — tag routing, the db lock taken one at
 * a time, and a kill -9 of one host (the README's command) moving its run to the other gpu
 * host while NATS, Redis and the other hosts carry on and foreman starts the host again.
 * Ctrl-C (SIGINT to foreman's process group) then stops everything.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, symlinkSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import t from "tap";
import { freePort } from "../helpers/servers.js";
import { repoRoot } from "../helpers/paths.js";
import { api, eventually, jsonLines, missingPrograms, readmeBlock, ShellSession } from "./readme.js";

const TOKEN = "dev-cluster-token-change-me";
const nf = join(repoRoot, "node_modules", ".bin", "nf");

type RunView = { ref: { run: string; execHost?: string }; state: string; result?: string; attempt: number };
type LogView = { lines: { at: number; text: string }[] };

function skipReason(): string | false {
  const missing = missingPrograms(["nats-server", "redis-server", "curl", "jq", "bash", "npx"]);
  if (!existsSync(nf)) missing.push("foreman (node_modules/.bin/nf: run npm ci)");
  if (!existsSync(join(repoRoot, "dist", "cmd", "floe.js"))) missing.push("dist/ (run npm run build)");
  return missing.length > 0 ? `the cluster walkthrough needs ${missing.join(", ")}` : false;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test("the Procfile walkthrough of the README works as written", { skip: skipReason() }, async (t) => {
  const dir = t.testdir({});
  for (const name of ["dist", "flows", "node_modules"]) symlinkSync(join(repoRoot, name), join(dir, name));
  copyFileSync(join(repoRoot, "Procfile"), join(dir, "Procfile"));
  const ports = { nats: await freePort(), redis: await freePort(), h1: await freePort(), h2: await freePort(), h3: await freePort() };
  const hostPort = { h1: ports.h1, h2: ports.h2, h3: ports.h3 } as const;
  const env: NodeJS.ProcessEnv = {};
  // A reader's FLOE_* settings (a root, a config) must not leak into the hosts.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("FLOE_")) env[k] = v;
  Object.assign(env, {
    FLOE_DEV_NATS_PORT: String(ports.nats),
    FLOE_DEV_REDIS_PORT: String(ports.redis),
    FLOE_DEV_H1_PORT: String(ports.h1),
    FLOE_DEV_H2_PORT: String(ports.h2),
    FLOE_DEV_H3_PORT: String(ports.h3),
  });

  // As `npx nf start` in a terminal: its own process group, which Ctrl-C signals as a whole.
  const foreman = spawn("npx", ["nf", "start"], { cwd: dir, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  foreman.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  foreman.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const group = foreman.pid ?? 0;
  const foremanExited = new Promise<void>((r) => foreman.once("exit", () => r()));
  t.teardown(async () => {
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      // already gone
    }
    await Promise.race([foremanExited, new Promise((r) => setTimeout(r, 5000))]);
    foreman.stdout?.destroy();
    foreman.stderr?.destroy();
  });
  const h = (host: keyof typeof hostPort) => `http://127.0.0.1:${hostPort[host]}/build/api`;
  const shell = new ShellSession(dir, { cwd: dir, env });
  t.teardown(() => shell.close());
  const block = (name: string) => readmeBlock(name).replace(/\b808([1-3])\b/g, (_m, n: string) => String(hostPort[`h${n}` as keyof typeof hostPort]));
  const run = async (name: string, timeoutMs = 60_000) => {
    const r = await shell.run(block(name), timeoutMs);
    t.same(r.failures, [], `every command of block ${name} succeeds`);
    return r.output;
  };

  await eventually(async () => {
    const r = await api(h("h1"), TOKEN, "GET", "/hosts");
    return ((r.body as { hosts?: { up: boolean }[] }).hosts ?? []).filter((x) => x.up).length === 3;
  }, 90_000, `three hosts up (foreman's output:\n${out.slice(-3000)})`).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${out.slice(-4000)}`);
  });

  // "h1, then h2 and h3 with the gpu tag, all up"
  const up = jsonLines(await run("cluster-up"));
  t.same(
    up.map((x) => [x["name"], x["tags"], x["up"]]),
    [
      ["h1", ["linux"], true],
      ["h2", ["linux", "gpu"], true],
      ["h3", ["linux", "gpu"], true],
    ],
    "the hosts block lists the three hosts, up, with their tags",
  );

  // "sent to h1, run on h2 or h3"
  const routed = await run("cluster-routing");
  const trainRun = await shell.variable("run");
  const epochs = routed.split("\n").filter((l) => l !== "");
  t.ok(epochs.length >= 1, `the log block shows the run's epochs:\n${routed}`);
  const onHost = /^epoch 1 of 2 on (h[23]) \(attempt 1\)$/.exec(epochs[0] ?? "")?.[1];
  t.ok(onHost !== undefined, `the first epoch ran on a gpu host: ${epochs[0] ?? "(none)"}`);
  for (const l of epochs) t.match(l, new RegExp(`on ${onHost ?? "h[23]"} \\(attempt 1\\)$`), "every epoch on that host");
  await eventually(async () => ((await api(h("h1"), TOKEN, "GET", `/runs/${trainRun}`)).body as RunView).state === "archived", 30_000, "the train run to end");
  const trained = (await api(h("h1"), TOKEN, "GET", `/runs/${trainRun}`)).body as RunView;
  t.equal(trained.result, "good");
  t.equal(trained.ref.execHost, onHost, "the API agrees on the host");

  // "one active, two pending waiting for the db lock; they run one after the other"
  const locked = jsonLines(await run("cluster-lock"));
  t.equal(locked.length, 3, "three migrations listed");
  t.ok(locked.filter((x) => x["state"] === "active").length <= 1, `at most one active at once: ${JSON.stringify(locked)}`);
  for (const x of locked) if (x["state"] === "pending") t.match(String(x["waiting"]), /db/, "a pending migration says it waits for the db lock");
  let migrations: RunView[] = [];
  await eventually(async () => {
    migrations = ((await api(h("h2"), TOKEN, "GET", "/runs?flow=migrate")).body as { runs: RunView[] }).runs;
    return migrations.length === 3 && migrations.every((m) => m.state === "archived");
  }, 60_000, "the three migrations to end");
  const spans: [number, number][] = [];
  for (const m of migrations) {
    t.equal(m.result, "good", "each migration ends good");
    const lines = ((await api(h("h1"), TOKEN, "GET", `/runs/${m.ref.run}/nodes/migrate/log`)).body as LogView).lines;
    const held = lines.find((l) => l.text.startsWith("holding the db lock"));
    const released = lines.find((l) => l.text === "released");
    if (held !== undefined && released !== undefined) spans.push([held.at, released.at]);
  }
  t.equal(spans.length, 3, "each migration logged taking and releasing the lock");
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) t.ok((spans[i]?.[0] ?? 0) >= (spans[i - 1]?.[1] ?? Infinity), "the migrations held the db lock one after the other");

  // The kill: the run moves to the other gpu host; NATS, Redis and the other hosts carry on.
  const killedOut = await run("cluster-kill", 90_000);
  const killed = /train is running on (h[23])/.exec(killedOut)?.[1] as "h2" | "h3" | undefined;
  t.ok(killed !== undefined, `the block names the host it killed:\n${killedOut}`);
  if (killed === undefined) return;
  const other = killed === "h2" ? "h3" : "h2";
  const moved = jsonLines(killedOut).find((x) => "attempt" in x);
  t.same(moved, { attempt: 2, state: "active", host: other }, "the run started again on the other gpu host");
  const hostsAfter = jsonLines(killedOut).filter((x) => "name" in x);
  t.same(
    hostsAfter.map((x) => [x["name"], x["up"]]),
    ["h1", "h2", "h3"].map((n) => [n, n !== killed]),
    "the killed host is down, the others up",
  );
  const longRun = await shell.variable("run");
  t.ok(await portOpen(ports.nats), "NATS is still up");
  t.ok(await portOpen(ports.redis), "Redis is still up");
  t.ok(alive(group), "foreman is still running");
  for (const host of ["h1", other] as const) t.equal((await api(h(host), TOKEN, "GET", "/healthz")).status, 200, `${host} is still up`);
  // The others carry on: a new run is taken and ends while the killed host is away.
  const beat = (await api(h("h1"), TOKEN, "POST", "/flows/heartbeat/runs", {})).body as { run: RunView };
  await eventually(async () => ((await api(h("h1"), TOKEN, "GET", `/runs/${beat.run.ref.run}`)).body as RunView).result === "good", 30_000, "a new run to end good");
  await eventually(async () => ((await api(h("h1"), TOKEN, "GET", `/runs/${longRun}`)).body as RunView).state === "archived", 60_000, "the moved run to end");
  const ended = (await api(h("h1"), TOKEN, "GET", `/runs/${longRun}`)).body as RunView;
  t.same([ended.result, ended.attempt, ended.ref.execHost], ["good", 2, other], "the moved run ends good, as attempt 2, on the other host");
  const lines = ((await api(h("h1"), TOKEN, "GET", `/runs/${longRun}/nodes/train/log`)).body as LogView).lines.map((l) => l.text);
  t.ok(lines.includes(`epoch 30 of 30 on ${other} (attempt 2)`), "attempt 2 ran every epoch on the other host");
  // Foreman's loop starts the killed host again, on the same root (its lock was left by a dead pid).
  await eventually(async () => {
    const r = await api(h("h1"), TOKEN, "GET", "/hosts");
    return ((r.body as { hosts?: { name: string; up: boolean }[] }).hosts ?? []).every((x) => x.up);
  }, 45_000, `${killed} to be back`);
  t.match(out, new RegExp(`${killed}\\.1\\s*\\|\\s*${killed} exited \\(137\\); starting it again in 10 s`), "foreman's output says the host is started again");
  t.equal((await api(h(killed), TOKEN, "GET", "/healthz")).status, 200, `${killed} answers again`);
  const lockPid = Number(readFileSync(join(dir, ".floe-cluster", killed, "lock"), "utf8").trim());
  t.ok(lockPid > 0 && alive(lockPid), "the host started again took over its root's lock (left by the killed pid)");

  // Ctrl-C: SIGINT to the whole process group, as a terminal sends it; every process ends.
  process.kill(-group, "SIGINT");
  await eventually(async () => !alive(-group), 40_000, "Ctrl-C to stop every process of the cluster");
  t.pass("Ctrl-C stopped foreman, the brokers and the three hosts");
});
