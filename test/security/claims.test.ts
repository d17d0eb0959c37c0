/**
 * The claims of SECURITY.md that no other test pins: the default bind address, the
 * generated admin token, secrets kept out of answers and logs, hashed sessions on disk, the
 * Secure cookie under TLS, redacted broker URLs, what a task runs as. Needs `npm run build`.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import t from "tap";
import { redactUrl as redact } from "../../store/redact-url.js";
import { parseSettings } from "../../cmd/settings.js";
import { hashPassword } from "../../hub/api/passwords.js";
import { ADMIN, startApi } from "../helpers/api.js";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";
import { floeBin } from "../helpers/paths.js";

const TINY = "flows:\n  - id: a\n    triggers: [{name: go, type: data}]\n    tasks: [{name: e, type: end, listen: trigger.good}]\n";

t.test("the default bind address is 127.0.0.1:8080", async (t) => {
  const s = parseSettings(["--conf=x.yml"], {});
  t.equal(s.bindHost, "127.0.0.1");
  t.equal(s.bindPort, 8080);
  const all = parseSettings(["--conf=x.yml", "--bind=0.0.0.0:9000"], {});
  t.equal(all.bindHost, "0.0.0.0", "--bind=0.0.0.0 is taken as given");
});

t.test("without --admin, a random admin token is generated into <root>/admin-token, mode 0600, and never printed", async (t) => {
  const dir = t.testdir({ "flows.yml": TINY });
  const root = join(dir, "root");
  const env = { ...process.env };
  delete env["FLOE_ADMIN"];
  const child = spawn(process.execPath, [floeBin, "serve", `--conf=${join(dir, "flows.yml")}`, `--root=${root}`, "--bind=127.0.0.1:0", "--log-level=info"], { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => child.once("exit", r));
  t.teardown(async () => {
    child.kill("SIGKILL");
    await exited;
  });
  // The dashboard line is the last line of floe's start-up.
  await until(() => /floe: dashboard /.test(out), 30_000, "floe to serve");
  const path = join(root, "admin-token");
  const token = readFileSync(path, "utf8").trim();
  t.ok(token.length >= 32, `a long token (${token.length} characters)`);
  t.equal(statSync(path).mode & 0o777, 0o600, "readable by the floe user only");
  t.notOk(out.includes(token), "the token itself is not printed");
  t.match(out, /admin token in .*admin-token/, "where it is kept is printed");
});

t.test("no answer and no log line holds a password hash, a webhook secret, a key path or a token", async (t) => {
  const dir = t.testdir({});
  const secret = "whsec-Zq81xPzLm0";
  const password = "pw-Kd93lLq0";
  const hash = await hashPassword(password);
  const keyPath = "/home/floe/.ssh/id_floe_SECRETPATH";
  const conf = join(dir, "flows.yml");
  writeFileSync(
    conf,
    `
common:
  git-key: ${keyPath}
  users: [{name: ada, role: admin, password-hash: "${hash}"}]
flows:
  - id: ci
    triggers:
      - {name: push, type: git-push, opts: {secret: "${secret}", url: "git@example.com:o/r.git"}}
      - {name: hook, type: webhook, opts: {secret: "${secret}"}}
      - {name: go, type: data}
    tasks:
      - {name: co, type: git-checkout, listen: task.never.good, opts: {url: "git@example.com:o/r.git", key-file: ${keyPath}}}
      - {name: e, type: end, listen: trigger.good}
`,
  );
  const f = await startFloe({ conf, root: join(dir, "root"), extra: ["--log-level=debug"] });
  t.teardown(() => f.kill9());
  const login = await fetch(`${f.api}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: "ada", password }) });
  t.equal(login.status, 200);
  const session = ((await login.json()) as { token: string }).token;
  await fetch(`${f.api}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: "ada", password: `${password}-wrong` }) });
  const body = Buffer.from(JSON.stringify({ version: "1" }));
  const signed = await fetch(`${f.api}/hooks/ci/hook`, { method: "POST", headers: { "content-type": "application/json", "x-floe-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}` }, body });
  t.equal(signed.status, 201, "a signed webhook starts a run");
  const run = ((await signed.json()) as { run: { ref: { run: string } } }).run.ref.run;
  t.equal((await fetch(`${f.api}/hooks/ci/hook`, { method: "POST", headers: { "content-type": "application/json", "x-floe-signature-256": "sha256=00" }, body })).status, 401);
  // The run's node log is read below: wait until the run has ended and written it.
  await until(async () => ((await f.req("GET", `/runs/${run}`)).body as { state?: string }).state === "archived", 30_000, "the run to end");
  const answers: string[] = [];
  for (const path of ["/flows", "/flows/ci", `/runs/${run}`, "/runs", "/hosts", "/metrics", "/whoami", "/openapi.json", `/runs/${run}/nodes/e/log`]) {
    const r = await f.req("GET", path);
    t.equal(r.status, 200, `GET ${path}`);
    answers.push(JSON.stringify(r.body));
  }
  const all = answers.join("\n");
  const log = f.output();
  const salt = hash.split("$")[4] ?? "";
  for (const [what, s] of [
    ["the webhook secret", secret],
    ["the password hash", salt],
    ["the password", password],
    ["the key path", "SECRETPATH"],
  ] as const) {
    t.notOk(all.includes(s), `no answer holds ${what}`);
    t.notOk(log.includes(s), `no log line holds ${what}`);
  }
  t.notOk(log.includes(session), "no log line holds a session token");
  t.notOk(log.includes(f.token), "no log line holds the admin token");
  // Only a SHA-256 of each session token is kept on disk.
  const onDisk = readFileSync(join(dir, "root", "sessions.json"), "utf8");
  t.notOk(onDisk.includes(session), "sessions.json does not hold the token");
  t.ok(onDisk.includes(createHash("sha256").update(session).digest("hex")), "only its SHA-256");
});

t.test("tokens: any length, a prefix or a near miss of the admin token is 401, never an error", async (t) => {
  const a = await startApi(t, TINY);
  for (const token of ["x", ADMIN.slice(0, -1), `${ADMIN}x`, ADMIN.toUpperCase(), " ".repeat(3), "t".repeat(8000), `${ADMIN}\u00e9`]) {
    const r = await a.call("GET", "/flows", { token: null, headers: { "x-floe-auth": token } });
    t.equal(r.status, 401, `${JSON.stringify(token.slice(0, 20))}… (${token.length} chars)`);
  }
  t.equal((await a.call("GET", "/flows")).status, 200, "the admin token itself works");
});

t.test("under TLS the session cookie is Secure", async (t) => {
  const dir = t.testdir({ "flows.yml": TINY });
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"], { encoding: "utf8" });
  if (made.error !== undefined || made.status !== 0) {
    t.comment(`not checked: no openssl to make a certificate (${made.error?.message ?? made.stderr})`);
    return;
  }
  const f = await startFloe({ conf: join(dir, "flows.yml"), root: join(dir, "root"), extra: [`--tls-cert=${cert}`, `--tls-key=${key}`] });
  t.teardown(() => f.kill9());
  t.match(f.url, /^https:/);
  const u = new URL(`${f.api}/login`);
  const cookie = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", rejectUnauthorized: false, headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      resolve(String(res.headers["set-cookie"] ?? ""));
    });
    req.on("error", reject);
    req.end(JSON.stringify({ token: f.token }));
  });
  t.match(cookie, /floe-sesh=.+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure/);
});

// Found while writing SECURITY.md: the start-up line showed a NATS token (nats://TOKEN@host)
// and every password after the first of a comma-separated server list.
t.test("broker URLs are shown without credentials: passwords, bare tokens, every URL of a list", async (t) => {
  const shown = redact("nats://s3cret-token@10.0.0.1:4222,nats://floe:pass-two@10.0.0.2:4222,nats://10.0.0.3:4222");
  t.notMatch(shown, /s3cret-token|pass-two|floe:/);
  t.equal(shown, "nats://***@10.0.0.1:4222,nats://***@10.0.0.2:4222,nats://10.0.0.3:4222");
  t.equal(redact("redis://:p%40ss@127.0.0.1:6379/0"), "redis://***@127.0.0.1:6379/0");
  t.equal(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379", "nothing to hide, nothing changed");
});

t.test("a task runs as the floe user, with the host's environment", async (t) => {
  const dir = t.testdir({});
  const a = await startApi(t, `
flows:
  - id: who
    triggers: [{name: go, type: data}]
    tasks:
      - {name: id, type: exec, listen: trigger.good, opts: {shell: 'id -u > "${dir}/uid"; printf "%s" "$HOME" > "${dir}/home"'}}
`);
  const r = await a.call("POST", "/flows/who/runs", { body: {} });
  t.equal(r.status, 201);
  t.equal((await a.end((r.json as { run: { ref: { run: string } } }).run.ref.run)).result, "good");
  t.equal(readFileSync(join(dir, "uid"), "utf8").trim(), String(process.getuid?.() ?? ""), "the same user id as floe");
  t.equal(readFileSync(join(dir, "home"), "utf8"), process.env["HOME"] ?? "", "the same HOME");
});

t.test("trading a token for a session is rate-limited like a password login", async (t) => {
  const a = await startApi(t, TINY);
  let last = 0;
  for (let i = 0; i < 11; i++) last = (await a.call("POST", "/login", { token: null, body: { token: `wrong-${i}` } })).status;
  t.equal(last, 429, "rate-limited after 10 failures");
  t.equal((await a.call("POST", "/login", { token: null, body: { token: ADMIN } })).status, 429, "even the right token, for a while");
});

t.test("no CORS headers: another origin's page can not read an answer", async (t) => {
  const a = await startApi(t, TINY);
  for (const [method, path] of [["GET", "/flows"], ["OPTIONS", "/flows"], ["POST", "/login"], ["GET", "/healthz"]] as const) {
    const r = await a.call(method, path, { headers: { origin: "https://evil.example", "access-control-request-method": "GET" }, ...(method === "POST" ? { body: { user: "x", password: "y" } } : {}) });
    t.equal(r.headers.get("access-control-allow-origin"), null, `${method} ${path}: no Access-Control-Allow-Origin`);
  }
});
