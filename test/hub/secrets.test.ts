/**
 * Secrets: a task gets the secrets its flow names; what it prints of them (whole, split over
 * two writes, base64, URL-encoded, in its outputs) never reaches the files under --root, the
 * JetStream stream or an API answer; a missing secret fails the task naming it; `floe
 * validate` reports a flow naming an undefined secret; SIGHUP re-reads the secrets.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { maskForms, Masker } from "../../hub/masker.js";
import { startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";
import { floeBin } from "../helpers/paths.js";

const SECRET = "s3cr3t/Value+with space!x9";
const SECRET2 = "rotated-Secret-2nd-value";
const ENV_SECRET = "env-held-secret-7Q2w";

/** Every form a careless task prints a secret in. */
function forms(v: string): string[] {
  return [v, Buffer.from(v).toString("base64"), encodeURIComponent(v), Buffer.from(v).toString("base64url")];
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) out.push(...filesUnder(p));
    else if (st?.isFile()) out.push(p);
  }
  return out;
}

/** Where a secret's forms were found among `blobs` (name → bytes). */
function leaks(blobs: Iterable<[string, Buffer]>, values: readonly string[]): string[] {
  const found: string[] = [];
  for (const [name, bytes] of blobs) for (const v of values) for (const f of forms(v)) if (bytes.includes(Buffer.from(f))) found.push(`${name}: ${JSON.stringify(f)}`);
  return found;
}

t.test("the masker: the value, its base64 at any alignment, URL and JSON forms", async (t) => {
  const m = new Masker([SECRET]);
  t.equal(m.mask(`x=${SECRET};`), "x=***;");
  t.equal(m.mask(Buffer.from(SECRET).toString("base64")), "***");
  for (const prefix of ["", "u", "us", "user:"]) {
    const b64 = Buffer.from(`${prefix}${SECRET}`).toString("base64");
    t.notOk(m.mask(b64).includes(Buffer.from(SECRET).toString("base64").slice(4, 12)), `base64 after ${JSON.stringify(prefix)} is masked`);
    t.match(m.mask(b64), /\*\*\*/);
  }
  t.equal(m.mask(`q=${encodeURIComponent(SECRET)}&`), "q=***&");
  t.equal(m.mask(JSON.stringify({ k: 'a"b' + SECRET })), JSON.stringify({ k: 'a"b***' }));
  t.equal(new Masker(["ab"]).mask("about"), "about", "values too short to mask are left alone");
  t.same(maskForms(""), []);
  t.equal(new Masker([]).mask("nothing"), "nothing");
});

const conf = (secretFile: string, notify = "") => `
common:
  secrets:
    API_KEY: {file: ${secretFile}}
    FROM_ENV: {env: FLOE_TEST_SECRET_VAR}
    GONE: {file: ./no-such-file}
flows:
  - id: leak
    secrets: [API_KEY]
    triggers: [{name: go, type: data}]
    tasks:
      - name: spill
        type: exec
        listen: trigger.good
        opts:
          shell: |
            echo "key=$API_KEY"
            printf '%s' "\${API_KEY:0:9}"; sleep 0.3; printf '%s\\n' "\${API_KEY:9}"
            printf '%s' "$API_KEY" | base64
            printf 'user:%s' "$API_KEY" | base64
            node -e 'console.log(encodeURIComponent(process.env.API_KEY))'
            echo "env secret: [$FLOE_TEST_SECRET_VAR]" >&2
            echo "tok=$API_KEY" >> "$FLOE_OUTPUT"
            exit 3
${notify}
  - id: needs-gone
    secrets: [GONE]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: use, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`;

t.test("a secret printed by a task never reaches disk, JetStream or the API", async (t) => {
  const c = await startCluster(t, { conf: "", env: { FLOE_TEST_SECRET_VAR: ENV_SECRET } });
  const secretFile = join(c.dir, "api-key");
  writeFileSync(secretFile, SECRET + "\n");
  writeFileSync(c.conf, conf(secretFile));
  const h = await c.start({ name: "h1" });

  const flows = await h.req("GET", "/flows");
  const leakFlow = (flows.body as { flows: { id: string; secrets: string[] }[] }).flows.find((f) => f.id === "leak");
  t.same(leakFlow?.secrets, ["API_KEY"], "GET /flows shows the names of the secrets");

  const started = await h.req("POST", "/flows/leak/runs", {});
  t.equal(started.status, 201);
  const run = (started.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await h.req("GET", `/runs/${run}`)).body as { state: string }).state === "archived", 20_000, "the run to end");
  const detail = await h.req("GET", `/runs/${run}`);
  const log = await h.req("GET", `/runs/${run}/nodes/spill/log`);
  const lines = (log.body as { lines: { text: string }[] }).lines.map((l) => l.text);
  t.ok(lines.includes("key=***"), "the whole value is masked");
  t.ok(lines.includes("***"), "the value written in two pieces is one masked line");
  t.ok(lines.includes("env secret: []"), "a secret from the host's environment does not reach a flow that does not name it");
  const spill = (detail.body as { nodes: { id: string; outputs?: Record<string, string>; exitCode?: number }[] }).nodes.find((n) => n.id === "spill");
  t.same(spill?.outputs, { tok: "***" }, "outputs are masked");
  t.equal(spill?.exitCode, 3, "the task ran");

  // A missing secret fails the task, naming the secret (and never a value).
  const gone = await h.req("POST", "/flows/needs-gone/runs", {});
  const goneRun = (gone.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await h.req("GET", `/runs/${goneRun}`)).body as { state: string }).state === "archived", 20_000, "the run to end");
  const goneDetail = (await h.req("GET", `/runs/${goneRun}`)).body as { result: string; nodes: { id: string; reason?: string; tag?: string }[] };
  t.equal(goneDetail.result, "bad");
  const use = goneDetail.nodes.find((n) => n.id === "use");
  t.match(use?.reason, /secret GONE is not available: file .*no-such-file can not be read on host h1 \(ENOENT\)/);
  t.equal(use?.tag, "task.use.error");

  // SIGHUP: the file's new value is what the next task gets (and is masked too).
  writeFileSync(secretFile, SECRET2);
  h.child.kill("SIGHUP");
  await until(() => /config reloaded/.test(h.output()) || true, 1000);
  let run2 = "";
  await until(async () => {
    const r = await h.req("POST", "/flows/leak/runs", {});
    run2 = (r.body as { run: { ref: { run: string } } }).run.ref.run;
    await until(async () => ((await h.req("GET", `/runs/${run2}`)).body as { state: string }).state === "archived", 20_000, "the run to end");
    const l = await h.req("GET", `/runs/${run2}/nodes/spill/log`);
    return (l.body as { lines: { text: string }[] }).lines.some((x) => x.text === "key=***") && !JSON.stringify(l.body).includes(SECRET2);
  }, 30_000, "a run after SIGHUP to get the new value, masked");

  // API answers, then the files, then the stream.
  const answers: [string, Buffer][] = [];
  for (const path of ["/flows", "/flows/leak", `/runs/${run}`, `/runs/${run2}`, `/runs/${run}/nodes/spill/log`, `/runs/${run2}/nodes/spill/log`, "/runs?limit=100", `/runs/${goneRun}`]) {
    const r = await fetch(`${h.api}${path}`, { headers: { "x-floe-auth": h.token } });
    answers.push([`GET ${path}`, Buffer.from(await r.arrayBuffer())]);
  }
  const ev = await fetch(`${h.api}/events?logs=true`, { headers: { "x-floe-auth": h.token, "last-event-id": "0" }, signal: AbortSignal.timeout(1500) }).then(async (r) => {
    const chunks: Buffer[] = [];
    try {
      for await (const c of r.body ?? []) chunks.push(Buffer.from(c as Uint8Array));
    } catch {
      // the timeout ends the stream
    }
    return Buffer.concat(chunks);
  });
  answers.push(["GET /events", ev]);
  t.same(leaks(answers, [SECRET, SECRET2, ENV_SECRET]), [], "no API answer holds a secret");

  const files = filesUnder(join(c.dir, "root-h1")).map((p): [string, Buffer] => [p, readFileSync(p)]);
  t.ok(files.some(([p]) => p.endsWith("spill.log") || p.includes("journal")), "the run's files were searched");
  t.same(leaks(files, [SECRET, SECRET2, ENV_SECRET]), [], "no file under --root holds a secret");
  t.same(leaks([["output", Buffer.from(h.output())]], [SECRET, SECRET2, ENV_SECRET]), [], "nor the host's console");

  const nc = await connect({ servers: c.nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("FLOE_EV_floe");
    t.ok(info.state.messages > 0, "the stream holds the runs' events");
    const msgs: [string, Buffer][] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage("FLOE_EV_floe", { seq }).catch(() => null);
      if (m !== null) msgs.push([`stream #${seq} ${m.subject}`, Buffer.from(m.data)]);
    }
    t.ok(msgs.some(([, b]) => b.includes(Buffer.from("key=***"))), "the masked line is in the stream");
    t.same(leaks(msgs, [SECRET, SECRET2, ENV_SECRET]), [], "no message of the stream holds a secret");
  } finally {
    await nc.close();
  }
  const store = filesUnder(join(c.dir, "nats")).map((p): [string, Buffer] => [p, readFileSync(p)]);
  t.same(leaks(store, [SECRET, SECRET2, ENV_SECRET]), [], "nor the stream's files on disk");
});

t.test("floe validate reports a flow naming an undefined secret", async (t) => {
  const dir = t.testdir({
    "bad.yml": "common:\n  secrets:\n    API_KEY: {env: X}\nflows:\n  - id: f\n    secrets: [API_KEY, API_KYE]\n    notify: [{url: 'http://x/y', secret: NOPE}]\n    tasks:\n      - {name: a, type: exec, listen: trigger.good, opts: {cmd: 'true'}}\n",
    "both.yml": "common:\n  secrets:\n    K: {env: X, file: y}\nflows: []\n",
    "flow-file.yml": "id: ff\nsecrets: [API_KEY]\ntasks:\n  - {name: a, type: exec, listen: trigger.good, opts: {cmd: 'true'}}\n",
  });
  const r = spawnSync(process.execPath, [floeBin, "validate", join(dir, "bad.yml"), join(dir, "both.yml")], { encoding: "utf8" });
  t.equal(r.status, 1);
  t.match(r.stdout, /bad\.yml:6:\d+: error: secret "API_KYE" of flow f is not defined in common\.secrets \(did you mean "API_KEY"\?\)/);
  t.match(r.stdout, /bad\.yml:7:\d+: error: notify\[0\]\.secret "NOPE" of flow f is not defined in common\.secrets/);
  t.match(r.stdout, /both\.yml:3:\d+: error: secret K needs exactly one of file: PATH or env: VAR/);
  t.notMatch(r.stdout, /API_KEY" of flow/, "a defined secret is fine");
  const ff = spawnSync(process.execPath, [floeBin, "validate", join(dir, "flow-file.yml")], { encoding: "utf8" });
  t.equal(ff.status, 0);
  t.match(ff.stdout, /flow-file\.yml:2:1: warning: secrets in a flow-file is ignored: give it to flow ff in the host's config/);
});

t.test("floe run gives a flow its secrets and masks them on the console", async (t) => {
  const dir = t.testdir({
    "key": `${SECRET}\n`,
    "flows.yml": "common:\n  secrets:\n    K: {file: ./key}\nflows:\n  - id: f\n    secrets: [K]\n    tasks:\n      - {name: a, type: exec, listen: trigger.good, opts: {shell: 'echo \"got $K\"; test \"$K\" = \"" + SECRET + "\"'}}\n",
  });
  const r = spawnSync(process.execPath, [floeBin, "run", join(dir, "flows.yml")], { encoding: "utf8" });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /\[f\.a [0-9A-Z]{4}\] got \*\*\*$/m);
  t.notOk(`${r.stdout}${r.stderr}`.includes(SECRET), "the value is not printed");
});
