/**
 * Bugs the fuzz tests found, each pinned by a focused test (see SECURITY.md and the fuzz
 * files for the sweeps that found them).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import t from "tap";
import { startApi } from "../helpers/api.js";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";
import { floeBin, refConfig, repoRoot } from "../helpers/paths.js";

const floe = (args: string[]) => spawnSync(process.execPath, [floeBin, ...args], { encoding: "utf8", timeout: 60_000 });
const EXAMPLE = readFileSync(resolve(repoRoot, "flows", "examples", "flows.yml"), "utf8");
const LOCATED_ERROR = /^.+\.yml:\d+:\d+: error: .*flow-file/m;

// Found by yaml.test.ts: a valid flow-file given where a host config belongs was refused
// with "not valid" and no located error (serve), or with nothing at all (run, SIGHUP).
t.test("a flow-file given as --conf is refused with a located error (serve, run, SIGHUP)", async (t) => {
  const dir = t.testdir({});
  const flowFile = join(dir, "FLOE.yml");
  copyFileSync(refConfig("floe.yml"), flowFile);
  const serve = floe(["serve", `--conf=${flowFile}`, `--root=${join(dir, "root")}`, "--bind=127.0.0.1:0", "--admin=x"]);
  t.equal(serve.status, 1, "serve exits 1");
  t.match(serve.stderr, LOCATED_ERROR, "serve says where and why");
  const run = floe(["run", flowFile]);
  t.equal(run.status, 1, "run exits 1");
  t.match(run.stderr, LOCATED_ERROR, "run says where and why");
  t.equal(floe(["validate", flowFile]).status, 0, "validate still accepts it as the flow-file it is");

  const conf = join(dir, "flows.yml");
  writeFileSync(conf, readFileSync(resolve(repoRoot, "flows", "examples", "flows.yml")));
  const f = await startFloe({ conf, root: join(dir, "root2") });
  t.teardown(() => f.kill9());
  copyFileSync(flowFile, conf);
  const mark = f.output().length;
  f.child.kill("SIGHUP");
  await until(() => /reload refused/.test(f.output().slice(mark)), 30_000, "the reload to be refused");
  t.match(f.output().slice(mark), LOCATED_ERROR, "the refused reload says where and why");
  t.equal((await f.req("GET", "/healthz")).status, 200, "the host keeps serving");
});

// Found by api.test.ts: errors raised by fastify's router and by Node's HTTP parser skipped
// floe's error handler; they answered in another shape, and the router's echoed the whole
// URL (10 kB of it) back.
t.test("router and HTTP parser errors answer in floe's error shape", async (t) => {
  const a = await startApi(t, EXAMPLE);
  const long = await a.call("GET", `/runs/${"x".repeat(10_000)}`);
  t.equal(long.status, 414, "an over-long path segment");
  t.match(long.json, { error: { code: "E_BAD_REQUEST", message: String } });
  t.ok(long.text.length < 200, "the URL is not echoed back");
  const badEscape = await a.call("GET", "/runs/%zz");
  t.equal(badEscape.status, 400, "a bad %-escape");
  t.match(badEscape.json, { error: { code: "E_BAD_REQUEST", message: String } });
  const port = new URL(a.base).port;
  // Content-Length and chunked encoding at once: a request-smuggling shape Node refuses.
  const raw = await new Promise<string>((resolve, reject) => {
    const c = connect(Number(port), "127.0.0.1", () => c.end(`GET /build/api/healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`));
    let out = "";
    c.on("data", (d: Buffer) => (out += d.toString("latin1")));
    c.on("close", () => resolve(out));
    c.on("error", reject);
  });
  t.match(raw, /^HTTP\/1\.1 400 /, "refused with 400");
  const body = raw.slice(raw.indexOf("\r\n\r\n") + 4);
  t.match(JSON.parse(body), { error: { code: "E_BAD_REQUEST", message: String } }, "in floe's error shape");
});
