import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import type { TaskRequest } from "../../agent/contract.js";
import { runFetch } from "../../agent/fetch.js";
import { lines, request, waitFor, workspace } from "./helpers.js";

const body = Buffer.from("floe fetch test body\n".repeat(500));
const hex = (algo: string): string => createHash(algo).update(body).digest("hex");

/** Requests seen, by path. */
const hits = new Map<string, number>();
let slowOpen = 0;
const server = http.createServer((req, res) => {
  const p = new URL(req.url ?? "/", "http://x").pathname;
  hits.set(p, (hits.get(p) ?? 0) + 1);
  if (p.startsWith("/file") || p.startsWith("/dir/")) {
    res.writeHead(200, { "content-length": body.length }).end(body);
  } else if (p === "/redirect") {
    res.writeHead(302, { location: "/file.bin" }).end();
  } else if (p === "/loop") {
    res.writeHead(301, { location: "/loop" }).end();
  } else if (p === "/slow") {
    // A chunk every 200 ms, never finishing: only an abort ends it.
    slowOpen++;
    res.writeHead(200, { "content-length": 1_000_000 });
    const tick = setInterval(() => res.write(Buffer.alloc(1000, 65)), 200);
    res.on("close", () => {
      clearInterval(tick);
      slowOpen--;
    });
  } else if (p === "/short") {
    res.writeHead(200, { "content-length": 1000 });
    res.write("only a little");
    setImmediate(() => res.destroy());
  } else {
    res.writeHead(404).end("no");
  }
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
t.teardown(() => {
  server.closeAllConnections();
  server.close();
});
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function setup(t: { teardown: (f: () => Promise<void>) => void }): Promise<{ ws: string; cache: string; req: (opts: Record<string, unknown>, over?: Partial<TaskRequest>) => TaskRequest }> {
  const ws = await workspace(t);
  const cache = path.join(ws, ".cache");
  return { ws, cache, req: (opts, over = {}) => request(ws, opts, { type: "fetch", cacheDir: cache, ...over }) };
}

const leftovers = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".part")) : []);

t.test("sha256: downloaded, checked, placed in the workspace", async (t) => {
  const { ws, cache, req } = await setup(t);
  const l = lines();
  const r = await runFetch(req({ url: `${base}/file.bin`, checksum: hex("sha256"), "checksum-algo": "sha256" }, { onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} });
  t.same(readFileSync(path.join(ws, "file.bin")), body);
  t.same(leftovers(cache), [], "no .part left");
  t.ok(l.texts("sys").includes("sha256 ok"));
  t.notOk(l.texts("sys").some((s) => s.includes("N.B.")));
});

t.test("sha1 inferred from length; md5 with `<hex> <file>` form", async (t) => {
  const { ws, req } = await setup(t);
  t.equal((await runFetch(req({ url: `${base}/file1.bin`, checksum: hex("sha1") }))).status, 0);
  t.same(readFileSync(path.join(ws, "file1.bin")), body);
  const r = await runFetch(req({ url: `${base}/file2.bin`, checksum: `${hex("md5").toUpperCase()}  file2.bin`, "checksum-algo": "MD5" }));
  t.same(r, { status: 0, outputs: {} });
  t.ok(existsSync(path.join(ws, "file2.bin")));
});

t.test("bad checksum: error with expected and got, no file anywhere", async (t) => {
  const { ws, cache, req } = await setup(t);
  const wrong = "0".repeat(64);
  const r = await runFetch(req({ url: `${base}/file-bad.bin`, checksum: wrong }));
  t.equal(r.status, 1);
  t.match(r.error, `expected ${wrong}, got ${hex("sha256")}`);
  t.notOk(existsSync(path.join(ws, "file-bad.bin")));
  t.same(readdirSync(cache), [], "cache empty");
});

t.test("option errors, before any request", async (t) => {
  const { req } = await setup(t);
  const before = hits.get("/file-opt.bin");
  const url = `${base}/file-opt.bin`;
  t.match((await runFetch(req({ url, checksum: hex("sha256"), "checksum-algo": "sha512" }))).error, /checksum-algo "sha512" is not one of/);
  t.match((await runFetch(req({ url, "checksum-algo": "crc" }))).error, /is not one of/, "even without a checksum");
  t.match((await runFetch(req({ url, checksum: "xyz" }))).error, /Error decoding hex checksum/);
  t.match((await runFetch(req({ url, checksum: "abcd" }))).error, /cannot tell the checksum algorithm from 4 hex digits/);
  t.match((await runFetch(req({ url, checksum: hex("md5"), "checksum-algo": "sha256" }))).error, /32 hex digits; sha256 needs 64/);
  t.same(await runFetch(req({})), { status: 1, error: "fetch needs opts url", outputs: {} });
  t.match((await runFetch(req({ url: "ftp://h/x" }))).error, /http or https/);
  t.match((await runFetch(req({ url: "not a url" }))).error, /is not a URL/);
  t.equal(hits.get("/file-opt.bin"), before, "server not asked");
});

t.test("404 is an error naming the status", async (t) => {
  const { req } = await setup(t);
  const r = await runFetch(req({ url: `${base}/nothing-here` }));
  t.equal(r.status, 1);
  t.match(r.error, /404 Not Found/);
});

t.test("connection refused is an error, not a crash", async (t) => {
  const { req } = await setup(t);
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const r = await runFetch(req({ url: `http://127.0.0.1:${port}/x.bin` }));
  t.equal(r.status, 1);
  t.match(r.error, /ECONNREFUSED/);
});

t.test("a body cut short is an error", async (t) => {
  const { cache, req } = await setup(t);
  const r = await runFetch(req({ url: `${base}/short` }));
  t.equal(r.status, 1);
  t.match(r.error, /download failed/);
  t.same(leftovers(cache), []);
});

t.test("abort stops a slow download with the signal's reason; progress at most every second", async (t) => {
  const { ws, cache, req } = await setup(t);
  const l = lines();
  const started = Date.now();
  const r = await runFetch(req({ url: `${base}/slow` }, { signal: AbortSignal.timeout(1500), onLine: l.onLine }));
  t.equal(r.status, -1);
  t.match(r.reason, /timeout/);
  t.ok(Date.now() - started < 5000, "ended soon after the abort");
  await waitFor("the server to see the connection closed", () => slowOpen === 0);
  t.same(leftovers(cache), []);
  t.notOk(existsSync(path.join(ws, "slow")));
  const progress = l.all.filter((x) => x.text.startsWith("downloaded "));
  t.ok(progress.length >= 1, "progress reported");
  for (let i = 1; i < progress.length; i++) t.ok((progress[i]?.at ?? 0) - (progress[i - 1]?.at ?? 0) >= 1000);
  t.match(progress[0]?.text, /of 976\.6 KiB/);
  t.ok(l.texts("sys").includes("(N.B. fetch without a checksum can not be trusted)"));
});

t.test("redirects are followed, up to five", async (t) => {
  const { ws, req } = await setup(t);
  const l = lines();
  const r = await runFetch(req({ url: `${base}/redirect`, checksum: hex("sha256"), location: "got.bin" }, { onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} });
  t.same(readFileSync(path.join(ws, "got.bin")), body);
  t.ok(l.texts("sys").includes(`redirected to ${base}/file.bin`));
  const loop = await runFetch(req({ url: `${base}/loop` }));
  t.match(loop.error, /more than 5 redirects/);
});

t.test("cache: reused with a matching checksum, never without one", async (t) => {
  const a = await setup(t);
  const b = await setup(t);
  const url = `${base}/file-cache.bin`;
  const sum = hex("sha256");
  t.equal((await runFetch(a.req({ url, checksum: sum }, { cacheDir: a.cache }))).status, 0);
  const l = lines();
  t.equal((await runFetch(b.req({ url, checksum: sum }, { cacheDir: a.cache, onLine: l.onLine }))).status, 0);
  t.equal(hits.get("/file-cache.bin"), 1, "second fetch did not hit the server");
  t.ok(l.texts("sys").some((s) => s.startsWith("using cached ")));
  t.same(readFileSync(path.join(b.ws, "file-cache.bin")), body);
  t.equal((await runFetch(b.req({ url, location: "again.bin" }, { cacheDir: a.cache }))).status, 0);
  t.equal(hits.get("/file-cache.bin"), 2, "no checksum: downloaded again");
});

t.test("location: relative, ./, trailing /, existing dir, absolute", async (t) => {
  const { ws, req } = await setup(t);
  const url = `${base}/dir/f.txt`;
  const cases: Array<[string, string]> = [
    ["sub/x.txt", path.join(ws, "sub/x.txt")],
    ["./dot.txt", path.join(ws, "dot.txt")],
    ["deps/", path.join(ws, "deps/f.txt")],
    ["sub", path.join(ws, "sub/f.txt")],
  ];
  for (const [location, want] of cases) {
    t.equal((await runFetch(req({ url, location }))).status, 0, location);
    t.same(readFileSync(want), body, `${location} → ${want}`);
  }
  const other = await mkdtemp(path.join(tmpdir(), "floe-fetch-abs-"));
  t.teardown(() => rm(other, { recursive: true, force: true }));
  t.equal((await runFetch(req({ url, location: path.join(other, "abs.txt") }))).status, 0);
  t.ok(existsSync(path.join(other, "abs.txt")));
});

t.test("across filesystems the file is copied", { skip: crossFsSkip() }, async (t) => {
  const { req } = await setup(t);
  const other = await mkdtemp("/dev/shm/floe-fetch-");
  t.teardown(() => rm(other, { recursive: true, force: true }));
  const r = await runFetch(req({ url: `${base}/file-xfs.bin`, location: `${other}/` }));
  t.same(r, { status: 0, outputs: {} });
  t.same(readFileSync(path.join(other, "file-xfs.bin")), body);
});

function crossFsSkip(): string | false {
  try {
    return statSync("/dev/shm").dev !== statSync(tmpdir()).dev ? false : "/dev/shm is on the same filesystem";
  } catch {
    return "no /dev/shm";
  }
}
