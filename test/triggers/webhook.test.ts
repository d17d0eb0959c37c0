/** Webhooks from GitHub, Gitea and GitLab (payloads in payloads.ts), and generic signed posts. */
import { hostCommands } from "../../agent/host-commands.js";
import { join } from "node:path";
import t from "tap";
import { buildApi } from "../../hub/api/server.js";
import { FileSessionStore } from "../../hub/api/sessions.js";
import { EventLog } from "../../hub/event-log.js";
import { Metrics } from "../../hub/metrics.js";
import { FloeError } from "../../hub/errors.js";
import { TriggerManager } from "../../hub/triggers/manager.js";
import { verifyAndParse, type Headers } from "../../hub/triggers/webhook.js";
import type { TriggerNode } from "../../flows/model.js";
import { config, startHub } from "../helpers/hub.js";
import { captureLog, RecordingSink } from "./helpers.js";
import { github, githubPush, gitea, giteaPush, gitlab, gitlabPush, hmac, OLD, SECRET, SHA, ZERO } from "./payloads.js";

function trig(opts: Record<string, unknown>, type: TriggerNode["type"] = "git-push"): TriggerNode {
  return { class: "trigger", id: "push", name: "push", type, opts: { secret: SECRET, ...opts } };
}

const YAML = `
flows:
  - id: ci
    ver: 1
    triggers:
      - { name: push, type: git-push, opts: { secret: "${SECRET}", refs: [refs/heads/*, refs/tags/v*] } }
      - { name: hook, type: webhook, opts: { secret: "${SECRET}" } }
      - { name: open, type: git-push }
      - { name: nightly, type: timer, opts: { period: 86400 } }
    tasks:
      - { name: build, type: exec, listen: trigger.good, opts: { cmd: "true" } }
`;

function manager(sink = new RecordingSink()): { m: TriggerManager; sink: RecordingSink; logs: ReturnType<typeof captureLog> } {
  const logs = captureLog();
  return { m: new TriggerManager({ commands: hostCommands, config: config(YAML), root: "/nonexistent-root", sink, log: logs.log }), sink, logs };
}

t.test("GitHub: a signed push starts one run with url, branch and hash", async (t) => {
  const { m, sink, logs } = manager();
  const req = github("push", githubPush());
  const res = await m.handleWebhook("ci", "push", req.headers, req.rawBody);
  t.equal(res.status, 201);
  t.match(res.body, { run: { ref: { flow: "ci", run: "run-1" } } });
  t.equal(sink.calls.length, 1);
  t.same(sink.calls[0], {
    flow: "ci",
    ver: 1,
    trigger: "push",
    by: "webhook",
    opts: { url: "https://github.com/octo-org/hello-world.git", branch: "main", hash: SHA, ref: "refs/heads/main", provider: "github", pusher: "mona" },
  });
  t.notMatch(logs.text(), SECRET, "the secret is never logged");
  t.notMatch(logs.text(), String(req.headers["x-hub-signature-256"]).slice(7), "nor the signature");
});

t.test("GitHub's documented test vector verifies", async (t) => {
  // docs.github.com "Validating webhook deliveries": this secret and payload give this signature.
  const headers: Headers = { "x-github-event": "push", "x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" };
  const r = verifyAndParse({ headers, rawBody: Buffer.from("Hello, World!"), trigger: trig({}) });
  t.match(r, { kind: "rejected", code: "E_BAD_REQUEST", message: /not valid JSON/ }, "past the signature check, stopped at the (non-JSON) body");
});

t.test("GitHub: bad, missing, truncated and stale signatures start nothing", async (t) => {
  const { m, sink, logs } = manager();
  const body = githubPush();
  const cases: [string, { headers: Headers; rawBody: Buffer }][] = [
    ["wrong secret", github("push", body, { secret: "not the secret" })],
    ["missing", github("push", body, { sign: false })],
    ["body modified after signing", (() => {
      const signed = github("push", body);
      return { headers: signed.headers, rawBody: Buffer.from(JSON.stringify(githubPush({ ref: "refs/heads/evil" }))) };
    })()],
    ["one byte appended", (() => {
      const signed = github("push", body);
      return { headers: signed.headers, rawBody: Buffer.concat([signed.rawBody, Buffer.from(" ")]) };
    })()],
  ];
  for (const [what, req] of cases) {
    const res = await m.handleWebhook("ci", "push", req.headers, req.rawBody);
    t.equal(res.status, 401, what);
    t.match(res.body, { error: { code: "E_SIGNATURE" } }, what);
  }
  const short = github("push", body);
  short.headers["x-hub-signature-256"] = "sha256=abcd";
  t.match(await m.handleWebhook("ci", "push", short.headers, short.rawBody), { status: 401, body: { error: { message: /not a SHA-256 HMAC/ } } }, "length is checked before comparing");
  const bare = github("push", body);
  bare.headers["x-hub-signature-256"] = hmac(bare.rawBody);
  t.match(await m.handleWebhook("ci", "push", bare.headers, bare.rawBody), { status: 401, body: { error: { message: /sha256=/ } } }, "GitHub's form is sha256=<hex>");
  t.equal(sink.calls.length, 0, "no run");
  t.notMatch(logs.text(), SECRET);
});

t.test("GitHub: ping answers 200 without a run; other events are ignored", async (t) => {
  const { m, sink } = manager();
  const ping = github("ping", { zen: "Design for failure.", hook_id: 42, hook: { type: "Repository", events: ["push"] } });
  t.same(await m.handleWebhook("ci", "push", ping.headers, ping.rawBody), { status: 200, body: { ok: true, event: "ping" } });
  const badPing = github("ping", { zen: "x" }, { secret: "wrong" });
  t.equal((await m.handleWebhook("ci", "push", badPing.headers, badPing.rawBody)).status, 401, "a ping is verified too");
  const issue = github("issues", { action: "opened", issue: { number: 1 } });
  t.match(await m.handleWebhook("ci", "push", issue.headers, issue.rawBody), { status: 202, body: { ignored: /issues/ } });
  t.equal(sink.calls.length, 0);
});

t.test("refs filter, tags and branch deletions", async (t) => {
  const filtered = trig({ refs: ["refs/heads/main", "refs/tags/v*"] });
  const dev = github("push", githubPush({ ref: "refs/heads/dev" }));
  t.match(verifyAndParse({ ...dev, trigger: filtered }), { kind: "ignored", reason: /refs\/heads\/dev does not match/ });
  const tag = github("push", githubPush({ ref: "refs/tags/v1.2.0", base_ref: "refs/heads/main", before: ZERO, created: true }));
  t.match(verifyAndParse({ ...tag, trigger: filtered }), { kind: "push", opts: { tag: "v1.2.0", hash: SHA, ref: "refs/tags/v1.2.0" } });
  t.notOk("branch" in ((verifyAndParse({ ...tag, trigger: filtered }) as { opts?: object }).opts ?? {}), "a tag is not a branch");
  const other = github("push", githubPush({ ref: "refs/tags/release-1" }));
  t.match(verifyAndParse({ ...other, trigger: filtered }), { kind: "ignored" });
  const del = github("push", githubPush({ after: ZERO, deleted: true, head_commit: null }));
  t.match(verifyAndParse({ ...del, trigger: filtered }), { kind: "ignored", reason: /deleted/ });
  const nested = github("push", githubPush({ ref: "refs/heads/feature/x" }));
  t.match(verifyAndParse({ ...nested, trigger: trig({ refs: "refs/heads/*" }) }), { kind: "push", opts: { branch: "feature/x" } }, "* spans slashes, as in ls-remote");
  t.match(verifyAndParse({ ...nested, trigger: trig({}) }), { kind: "push" }, "no refs: every ref");
});

t.test("malformed payloads are 400 and start nothing", async (t) => {
  const { m, sink } = manager();
  const broken = github("push", "{ not json");
  t.match(await m.handleWebhook("ci", "push", broken.headers, broken.rawBody), { status: 400, body: { error: { code: "E_BAD_REQUEST", message: /not valid JSON/ } } });
  const noRef = github("push", githubPush({ ref: undefined }));
  t.match(await m.handleWebhook("ci", "push", noRef.headers, noRef.rawBody), { status: 400, body: { error: { message: /no ref/ } } });
  const noHash = github("push", githubPush({ after: "main" }));
  t.match(await m.handleWebhook("ci", "push", noHash.headers, noHash.rawBody), { status: 400 });
  const array = github("push", "[1,2]");
  t.match(await m.handleWebhook("ci", "push", array.headers, array.rawBody), { status: 400 });
  const anon = { headers: { "content-type": "application/json" }, rawBody: Buffer.from("{}") };
  t.match(await m.handleWebhook("ci", "push", anon.headers, anon.rawBody), { status: 400, body: { error: { message: /GitHub, Gitea or GitLab/ } } });
  t.equal(sink.calls.length, 0);
});

t.test("a trigger without a secret refuses every push", async (t) => {
  const { m, sink } = manager();
  const req = github("push", githubPush(), { sign: false });
  t.match(await m.handleWebhook("ci", "open", req.headers, req.rawBody), { status: 401, body: { error: { code: "E_SIGNATURE", message: /no opts.secret/ } } });
  t.equal(sink.calls.length, 0);
});

t.test("opts.url wins over the payload's clone URL; GitHub's form encoding is understood", async (t) => {
  const mine = trig({ url: "git@github.com:octo-org/hello-world.git" });
  t.match(verifyAndParse({ ...github("push", githubPush()), trigger: mine }), { kind: "push", opts: { url: "git@github.com:octo-org/hello-world.git" } });
  const form = Buffer.from(`payload=${encodeURIComponent(JSON.stringify(githubPush()))}`);
  const req = github("push", "", { sign: form });
  req.headers["content-type"] = "application/x-www-form-urlencoded";
  t.match(verifyAndParse({ headers: req.headers, rawBody: form, trigger: trig({}) }), { kind: "push", opts: { branch: "main", hash: SHA } });
});

t.test("a replayed delivery starts no second run", async (t) => {
  const { m, sink } = manager();
  const req = github("push", githubPush(), { delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958" });
  t.equal((await m.handleWebhook("ci", "push", req.headers, req.rawBody)).status, 201);
  t.match(await m.handleWebhook("ci", "push", req.headers, req.rawBody), { status: 202, body: { ignored: /already handled/ } });
  t.equal(sink.calls.length, 1);
});

t.test("Gitea: hex X-Gitea-Signature", async (t) => {
  const { m, sink } = manager();
  const good = gitea(giteaPush({ ref: "refs/heads/develop" }));
  t.equal((await m.handleWebhook("ci", "push", good.headers, good.rawBody)).status, 201);
  t.match(sink.calls[0], { opts: { url: "http://localhost:3000/gitea/webhooks.git", branch: "develop", hash: SHA, provider: "gitea", pusher: "gitea" } });
  const bad = gitea(giteaPush(), { secret: "nope" });
  t.match(await m.handleWebhook("ci", "push", bad.headers, bad.rawBody), { status: 401 });
  const none = gitea(giteaPush(), { sign: false });
  t.match(await m.handleWebhook("ci", "push", none.headers, none.rawBody), { status: 401, body: { error: { message: /X-Gitea-Signature/ } } });
  const tampered = gitea(giteaPush());
  t.match(await m.handleWebhook("ci", "push", tampered.headers, Buffer.from(JSON.stringify(giteaPush({ after: OLD })))), { status: 401 });
  t.equal(sink.calls.length, 1);
});

t.test("GitLab: X-Gitlab-Token, Push Hook and Tag Push Hook", async (t) => {
  const { m, sink } = manager();
  const push = gitlab("Push Hook", gitlabPush({ ref: "refs/heads/main" }));
  t.equal((await m.handleWebhook("ci", "push", push.headers, push.rawBody)).status, 201);
  t.same(sink.calls[0]?.opts, { url: "http://example.com/mike/diaspora.git", branch: "main", hash: SHA, ref: "refs/heads/main", provider: "gitlab", pusher: "jsmith" });
  const tag = gitlab("Tag Push Hook", gitlabPush({ object_kind: "tag_push", event_name: "tag_push", ref: "refs/tags/v1.0.0", before: ZERO }));
  t.equal((await m.handleWebhook("ci", "push", tag.headers, tag.rawBody)).status, 201);
  t.match(sink.calls[1]?.opts, { tag: "v1.0.0", hash: SHA });
  t.match(await m.handleWebhook("ci", "push", ...(Object.values(gitlab("Push Hook", gitlabPush(), "wrong")) as [Headers, Buffer])), { status: 401 });
  t.match(await m.handleWebhook("ci", "push", ...(Object.values(gitlab("Push Hook", gitlabPush(), null)) as [Headers, Buffer])), { status: 401, body: { error: { message: /X-Gitlab-Token/ } } });
  const del = gitlab("Push Hook", gitlabPush({ ref: "refs/heads/main", after: ZERO, checkout_sha: null }));
  t.match(await m.handleWebhook("ci", "push", del.headers, del.rawBody), { status: 202, body: { ignored: /deleted/ } });
  const mr = gitlab("Merge Request Hook", { object_kind: "merge_request" });
  t.match(await m.handleWebhook("ci", "push", mr.headers, mr.rawBody), { status: 202 });
  t.equal(sink.calls.length, 2);
});

t.test("generic webhook: signed JSON, top-level scalars become values", async (t) => {
  const { m, sink } = manager();
  const body = JSON.stringify({ version: "1.2.3", count: 3, dry_run: true, nested: { a: 1 }, list: [1], "bad key": "x" });
  const res = await m.handleWebhook("ci", "hook", { "content-type": "application/json", "x-floe-signature-256": `sha256=${hmac(body)}` }, Buffer.from(body));
  t.equal(res.status, 201);
  t.same(sink.calls[0], { flow: "ci", ver: 1, trigger: "hook", by: "webhook", values: { version: "1.2.3", count: 3, dry_run: true } });
  t.match(await m.handleWebhook("ci", "hook", { "content-type": "application/json" }, Buffer.from(body)), { status: 401 });
  t.match(await m.handleWebhook("ci", "hook", { "x-floe-signature-256": `sha256=${hmac(body, "x")}` }, Buffer.from(body)), { status: 401 });
  t.equal(sink.calls.length, 1);
});

t.test("unknown flows and triggers are 404; refusals keep their status", async (t) => {
  const { m, sink } = manager();
  const req = github("push", githubPush());
  t.match(await m.handleWebhook("nope", "push", req.headers, req.rawBody), { status: 404, body: { error: { code: "E_FLOW_NOT_FOUND" } } });
  t.match(await m.handleWebhook("ci", "nope", req.headers, req.rawBody), { status: 404, body: { error: { code: "E_TRIGGER_NOT_FOUND" } } });
  t.match(await m.handleWebhook("ci", "nightly", req.headers, req.rawBody), { status: 404, body: { error: { code: "E_TRIGGER_NOT_FOUND", message: /not a webhook trigger/ } } });
  sink.refuse = new FloeError("E_QUEUE_FULL", "flow ci already has 5 pending runs");
  const again = github("push", githubPush());
  t.match(await m.handleWebhook("ci", "push", again.headers, again.rawBody), { status: 429, body: { error: { code: "E_QUEUE_FULL" } } });
  sink.refuse = undefined;
  t.equal((await m.handleWebhook("ci", "push", again.headers, again.rawBody)).status, 201, "a refused delivery may be redelivered");
});

t.test("with a real hub: the run's trigger values carry url, branch and hash", async (t) => {
  const h = await startHub(t, YAML);
  const logs = captureLog();
  const m = new TriggerManager({ commands: hostCommands, config: h.hub.currentConfig, root: h.root, sink: h.hub, log: logs.log });
  const req = github("push", githubPush({ ref: "refs/heads/release/2" }));
  const res = await m.handleWebhook("ci", "push", req.headers, req.rawBody);
  t.equal(res.status, 201);
  const run = (res.body as { run: { ref: { run: string } } }).run.ref.run;
  const detail = await h.hub.getRun(run);
  t.match(detail.trigger, { id: "push", type: "git-push", values: { url: "https://github.com/octo-org/hello-world.git", branch: "release/2", hash: SHA, ref: "refs/heads/release/2" } });
  t.notOk("secret" in detail.trigger.values, "the secret stays out of the run");
  t.equal((await h.end(run)).result, "good");
});

t.test("over HTTP: POST /hooks/:flow/:trigger through the real API", async (t) => {
  const h = await startHub(t, YAML);
  const logs = captureLog();
  const m = new TriggerManager({ commands: hostCommands, config: h.hub.currentConfig, root: h.root, sink: h.hub, log: logs.log });
  const app = await buildApi({
    hub: h.hub,
    log: logs.log,
    adminToken: "admin-token-for-tests-0123456789",
    sessions: new FileSessionStore(join(h.root, "sessions.json")),
    users: () => [],
    events: new EventLog(h.hub.bus),
    metrics: new Metrics(h.hub.bus),
    webhooks: m,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.teardown(() => app.close());
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}/build/api/hooks/ci/push`;
  const post = async (req: { headers: Headers; rawBody: Buffer }): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(url, { method: "POST", headers: req.headers as Record<string, string>, body: req.rawBody });
    return { status: res.status, json: await res.json() };
  };
  const good = await post(github("push", githubPush()));
  t.equal(good.status, 201, "no token needed: the signature is the credential");
  t.match(good.json, { run: { ref: { flow: "ci" }, trigger: { values: { branch: "main", hash: SHA } } } });
  t.match(await post(github("push", githubPush(), { secret: "wrong" })), { status: 401, json: { error: { code: "E_SIGNATURE" } } });
  const tampered = github("push", githubPush());
  t.match(await post({ headers: tampered.headers, rawBody: Buffer.from(tampered.rawBody.toString().replace("main", "evil")) }), { status: 401 });
  t.match(await post(github("ping", { zen: "Keep it logically awesome." })), { status: 200, json: { ok: true, event: "ping" } });
  t.equal(h.hub.listRuns({ limit: 100 }).length, 1, "only the good push started a run");
});
