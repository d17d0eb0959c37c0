/**
 * A host refuses to join a cluster it can not use: NATS or Redis unreachable, JetStream
 * off, Redis that may evict keys, one broker without the other. Each refusal is a clear
 * message and a non-zero exit; a password in a broker URL never shows.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { floeBin } from "../helpers/paths.js";
import { freePort, startNats, startRedis } from "../helpers/servers.js";

const flows = `
flows:
  - id: hello
    triggers: [{name: go, type: data}]
    tasks:
      - {name: say, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`;

/** Runs `floe serve` until it exits (it must, within the timeout). */
async function serve(dir: string, extra: string[]): Promise<{ code: number | null; out: string }> {
  const conf = join(dir, "flows.yml");
  writeFileSync(conf, flows);
  const child = spawn(process.execPath, [floeBin, "serve", `--conf=${conf}`, `--root=${join(dir, "root")}`, "--host=h1", "--bind=127.0.0.1:0", "--admin=test-admin-token-0123456789", ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  clearTimeout(timer);
  return { code, out };
}

t.test("--nats without --redis is a usage error", async (t) => {
  const r = await serve(t.testdir({}), ["--nats=nats://127.0.0.1:4222"]);
  t.equal(r.code, 2);
  t.match(r.out, /cluster mode needs both --nats=URL and --redis=URL/);
});

t.test("unreachable Redis: refused, with the URL and what to do", async (t) => {
  const dir = t.testdir({});
  const nats = await startNats(dir);
  t.teardown(() => nats.stop());
  const port = await freePort();
  const r = await serve(dir, [`--nats=${nats.url}`, `--redis=redis://127.0.0.1:${port}`]);
  t.equal(r.code, 1);
  t.match(r.out, new RegExp(`127\\.0\\.0\\.1:${port}`), r.out);
  t.match(r.out, /nothing started/);
  t.notMatch(r.out, /serving \d+ flow/, "it never served");
});

t.test("unreachable NATS: refused", async (t) => {
  const dir = t.testdir({});
  const redis = await startRedis(dir);
  t.teardown(() => redis.stop());
  const port = await freePort();
  const r = await serve(dir, [`--nats=nats://127.0.0.1:${port}`, `--redis=${redis.url}`]);
  t.equal(r.code, 1);
  t.match(r.out, /can not reach NATS at nats:\/\/127\.0\.0\.1:\d+/, r.out);
  t.notMatch(r.out, /serving \d+ flow/);
});

t.test("NATS with JetStream off: refused, saying to start it with -js", async (t) => {
  const dir = t.testdir({});
  const nats = await startNats(dir, { jetstream: false });
  const redis = await startRedis(dir);
  t.teardown(async () => {
    await nats.stop();
    await redis.stop();
  });
  const r = await serve(dir, [`--nats=${nats.url}`, `--redis=${redis.url}`]);
  t.equal(r.code, 1);
  t.match(r.out, /JetStream off.*-js/, r.out);
});

t.test("Redis that may evict keys: refused, naming the setting", async (t) => {
  const dir = t.testdir({});
  const nats = await startNats(dir);
  const redis = await startRedis(dir, ["--maxmemory-policy", "allkeys-lru"]);
  t.teardown(async () => {
    await nats.stop();
    await redis.stop();
  });
  const r = await serve(dir, [`--nats=${nats.url}`, `--redis=${redis.url}`]);
  t.equal(r.code, 1);
  t.match(r.out, /maxmemory-policy/, r.out);
  t.match(r.out, /noeviction/);
});

t.test("a password in a broker URL is never printed", async (t) => {
  const dir = t.testdir({});
  const nats = await startNats(dir);
  t.teardown(() => nats.stop());
  const port = await freePort();
  const r = await serve(dir, [`--nats=${nats.url}`, `--redis=redis://floe:s3cret-pass@127.0.0.1:${port}`]);
  t.equal(r.code, 1);
  t.notMatch(r.out, /s3cret-pass/, "the password stays out of the message");
});
