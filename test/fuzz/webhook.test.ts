/**
 * Fuzzing the webhook endpoint (POST /build/api/hooks/:flow/:trigger) of a real hub behind
 * the real HTTP API: GitHub, Gitea, GitLab and generic deliveries with random and mutated
 * bodies, no signature, garbage signatures, signatures with the wrong secret, signatures
 * over a different body, malformed and repeated signature headers, conflicting provider
 * headers, and replayed delivery ids. The oracle: a run is created only by a delivery this
 * test signed correctly (counting the hub's runs around every request), a correctly signed
 * push with a fresh delivery id creates exactly one, a replay creates none, nothing
 * answers 5xx, and the secret never reaches the log.
 * Seeded: the seed is printed; FLOE_FUZZ_SEED repeats a run.
 */
import { hostCommands } from "../../agent/host-commands.js";
import { createHmac } from "node:crypto";
import { join } from "node:path";
import t from "tap";
import { errorMessage } from "../../flows/errors.js";
import { buildApi } from "../../hub/api/server.js";
import { FileSessionStore } from "../../hub/api/sessions.js";
import { EventLog } from "../../hub/event-log.js";
import { Metrics } from "../../hub/metrics.js";
import { TriggerManager } from "../../hub/triggers/manager.js";
import { startHub } from "../helpers/hub.js";
import { captureLog } from "../triggers/helpers.js";
import { githubPush, giteaPush, gitlabPush, SHA } from "../triggers/payloads.js";
import { rawRequest, STACK_FRAME } from "./http.js";
import { fuzzRng, HOSTILE, type Rng } from "./prng.js";

const FILE = "test/fuzz/webhook.test.ts";
const REQUESTS = 1200;
const SECRET = "fuzz-secret-7f3a9c1e5b";

const YAML = `
flows:
  - id: ci
    triggers:
      - {name: push, type: git-push, opts: {secret: "${SECRET}", url: "https://example.com/r.git"}}
      - {name: hook, type: webhook, opts: {secret: "${SECRET}"}}
      - {name: open, type: git-push}
      - {name: start, type: data}
    tasks:
      - {name: fin, type: end, listen: trigger.good}
`;

type Provider = "github" | "gitea" | "gitlab" | "generic";
type Sig = "valid" | "none" | "garbage" | "wrong-secret" | "other-body" | "truncated" | "flipped" | "wrong-prefix" | "repeated" | "empty";
const SIGS: readonly Sig[] = ["valid", "valid", "valid", "none", "garbage", "wrong-secret", "other-body", "truncated", "flipped", "wrong-prefix", "repeated", "empty"];

const hmacHex = (body: Buffer, secret = SECRET) => createHmac("sha256", secret).update(body).digest("hex");

function payload(rng: Rng, p: Provider): unknown {
  switch (p) {
    case "github":
      return githubPush({ ref: "refs/heads/main" });
    case "gitea":
      return giteaPush({ ref: "refs/heads/main" });
    case "gitlab":
      return gitlabPush({ after: SHA, checkout_sha: SHA });
    case "generic":
      return { version: "1.2.3", n: rng.int(100), ok: true };
  }
}

/** A body that may no longer be the provider's payload: fields of other types, random JSON, bytes. */
function mutateBody(rng: Rng, base: unknown): Buffer {
  const k = rng.int(6);
  if (k === 0) return rng.bytes(rng.range(0, 300));
  if (k === 1) return Buffer.from(JSON.stringify(base)).subarray(0, rng.range(0, 40));
  if (k === 2) return Buffer.from(JSON.stringify(rng.pick([null, 1, "x", [], [base], true])));
  if (k === 3) return Buffer.from(`payload=${encodeURIComponent(JSON.stringify(base))}`);
  const o = { ...(base as Record<string, unknown>) };
  for (const key of ["ref", "after", "checkout_sha", "repository", "project", "deleted", rng.pick(HOSTILE).slice(0, 40)]) {
    if (rng.bool(0.3)) o[key] = rng.pick([null, 0, "", "refs/heads/../../x", "0".repeat(40), "g".repeat(40), { clone_url: rng.pick(HOSTILE) }, [1], rng.pick(HOSTILE), true]);
  }
  return Buffer.from(JSON.stringify(o));
}

interface Delivery {
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
  /** True only when this test put the right credential on a clean single-provider request to a trigger with a secret. */
  readonly signed: boolean;
  /** Signed, the unmutated payload, a fresh delivery id: it must start a run. */
  readonly mustRun: boolean;
  readonly delivery: string;
  /** The delivery id already started a run of this trigger: it must start none now. */
  readonly replay: boolean;
  readonly what: string;
}

t.test("random, unsigned, mis-signed and replayed webhooks: a run only for a valid signature", async (t) => {
  const rng = fuzzRng(t, FILE, 1);
  const h = await startHub(t, YAML);
  const logs = captureLog();
  const triggers = new TriggerManager({ commands: hostCommands, config: h.hub.currentConfig, root: h.root, sink: h.hub, log: logs.log });
  const events = new EventLog(h.hub.bus);
  const metrics = new Metrics(h.hub.bus);
  const app = await buildApi({ hub: h.hub, log: logs.log, adminToken: "admin-token-for-tests-0123456789", sessions: new FileSessionStore(join(h.root, "sessions.json")), users: () => [], events, metrics, webhooks: triggers });
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.teardown(async () => {
    await app.close();
    events.close();
    metrics.close();
  });
  const addr = app.server.address();
  const base = new URL(`http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}`);
  const runCount = () => h.hub.listRuns({ limit: 1_000_000 }).length;

  // Delivery ids come from a small pool so that replays happen; accepted ones are remembered per trigger.
  const pool = Array.from({ length: 40 }, (_, i) => `d-${rng.seed}-${i}`);
  const accepted = new Set<string>();

  const make = (): Delivery => {
    const provider: Provider = rng.pick(["github", "gitea", "gitlab", "generic"]);
    const trigger = provider === "generic" ? (rng.bool(0.9) ? "hook" : rng.pick(["open", "push", "start", "nope"])) : rng.bool(0.9) ? "push" : rng.pick(["open", "hook", "start", "nope"]);
    const flow = rng.bool(0.95) ? "ci" : rng.pick(["nope", "..", "%2e%2e", "ci%00"]);
    const base = payload(rng, provider);
    const clean = rng.bool(0.6);
    const body = clean ? Buffer.from(JSON.stringify(base)) : mutateBody(rng, base);
    // Another provider's headers on top, some of the time: then only invalid credentials are
    // sent, so that any run at all is a bug whichever provider the hub takes it for.
    const conflicting = rng.bool(0.1);
    let sig = conflicting ? rng.pick(SIGS.filter((x) => x !== "valid")) : rng.pick(SIGS);
    // GitLab sends the secret itself, so "over another body" does not apply: it becomes a wrong token.
    if (provider === "gitlab" && sig === "other-body") sig = "wrong-secret";
    const delivery = rng.pick(pool);
    const headers: Record<string, string | string[]> = { "content-type": rng.bool(0.9) ? "application/json" : rng.pick(["text/plain", "application/x-www-form-urlencoded", ""]) };
    const right = hmacHex(body);
    const credential = (): string | string[] | undefined => {
      switch (sig) {
        case "valid":
          return provider === "gitlab" ? SECRET : provider === "gitea" ? right : `sha256=${right}`;
        case "none":
          return undefined;
        case "empty":
          return "";
        case "garbage":
          return rng.pick(HOSTILE.filter((s) => /^[\x20-\x7e]*$/.test(s)));
        case "wrong-secret":
          return provider === "gitlab" ? `${SECRET}x` : provider === "gitea" ? hmacHex(body, "not-the-secret") : `sha256=${hmacHex(body, "not-the-secret")}`;
        case "other-body": {
          const other = hmacHex(Buffer.concat([body, Buffer.from(" ")]));
          return provider === "gitea" ? other : `sha256=${other}`;
        }
        case "truncated":
          return provider === "gitlab" ? SECRET.slice(0, -1) : provider === "gitea" ? right.slice(0, 63) : `sha256=${right.slice(0, 63)}`;
        case "flipped": {
          const f = `${right.slice(0, 10)}${right[10] === "0" ? "1" : "0"}${right.slice(11)}`;
          return provider === "gitlab" ? SECRET.toUpperCase() : provider === "gitea" ? f : `sha256=${f}`;
        }
        case "wrong-prefix":
          // (Not " secret": HTTP strips the spaces around a header value.)
          return provider === "gitlab" ? `Bearer ${SECRET}` : provider === "gitea" ? `sha256=${right}` : `sha1=${right}`;
        case "repeated": {
          // Two copies of the right value: Node joins them into one header that never verifies.
          const v = provider === "gitlab" ? SECRET : provider === "gitea" ? right : `sha256=${right}`;
          return [v, v];
        }
      }
    };
    const cred = credential();
    switch (provider) {
      case "github":
        headers["x-github-event"] = rng.bool(0.95) ? "push" : rng.pick(["ping", "issues", "", "PUSH"]);
        headers["x-github-delivery"] = delivery;
        if (cred !== undefined) headers["x-hub-signature-256"] = cred;
        break;
      case "gitea":
        headers["x-gitea-event"] = "push";
        headers["x-gitea-delivery"] = delivery;
        if (cred !== undefined) headers[rng.bool(0.8) ? "x-gitea-signature" : "x-gogs-signature"] = cred;
        break;
      case "gitlab":
        headers["x-gitlab-event"] = rng.bool(0.95) ? "Push Hook" : rng.pick(["Tag Push Hook", "Issue Hook", "System Hook"]);
        headers["x-gitlab-event-uuid"] = delivery;
        if (cred !== undefined) headers["x-gitlab-token"] = cred;
        break;
      case "generic":
        headers["x-floe-delivery"] = delivery;
        if (cred !== undefined) headers[rng.bool(0.8) ? "x-floe-signature-256" : "x-hub-signature-256"] = cred;
        break;
    }
    if (conflicting) {
      const other = rng.pick(["x-github-event", "x-gitea-event", "x-gitlab-event", "x-gogs-event"]);
      headers[other] = rng.pick(["push", "Push Hook"]);
      if (rng.bool()) headers[rng.pick(["x-hub-signature-256", "x-gitea-signature", "x-gitlab-token", "x-floe-signature-256"])] = rng.pick(["", "sha256=00", SECRET.slice(1)]);
    }
    // A generic webhook trigger takes GitHub's signature header too (README: anything else).
    const hookTrigger = trigger === "hook" ? provider === "generic" || provider === "github" : trigger === "push" && provider !== "generic";
    const signed = sig === "valid" && !conflicting && flow === "ci" && hookTrigger;
    const event = headers["x-github-event"] ?? headers["x-gitlab-event"];
    const isPush = event === undefined || event === "push" || event === "Push Hook";
    const replay = flow === "ci" && accepted.has(`${trigger}/${delivery}`);
    const mustRun = signed && clean && headers["content-type"] === "application/json" && isPush && !replay;
    const path = `/build/api/hooks/${flow}/${trigger}`;
    return { path, headers, body, signed, mustRun, delivery, replay, what: `${provider} ${path} sig=${sig}${conflicting ? " +conflicting" : ""} ${clean ? "payload" : "mutated"} delivery=${delivery}` };
  };

  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let runsMade = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const d = make();
    const before = runCount();
    let res;
    try {
      res = await rawRequest(base, { method: "POST", path: d.path, headers: d.headers, body: d.body });
    } catch (e) {
      failures.push(`#${i} ${d.what}: ${errorMessage(e)}`);
      continue;
    }
    const made = runCount() - before;
    runsMade += made;
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status >= 500) failures.push(`#${i} ${d.what}: ${res.status} ${res.body.slice(0, 200)}`);
    if (STACK_FRAME.test(res.body)) failures.push(`#${i} ${d.what}: a stack trace in the answer`);
    if (made > 0 && !d.signed) failures.push(`#${i} ${d.what}: ${made} run(s) without a valid signature (answered ${res.status})`);
    if (res.status === 201 !== (made === 1)) failures.push(`#${i} ${d.what}: answered ${res.status} and made ${made} run(s)`);
    if (d.replay && made > 0) failures.push(`#${i} ${d.what}: a replayed delivery started a run`);
    if (d.mustRun && res.status !== 201) failures.push(`#${i} ${d.what}: a valid delivery answered ${res.status} ${res.body.slice(0, 200)}`);
    if (res.status === 201) accepted.add(`${d.path.split("/").at(-1) ?? ""}/${d.delivery}`);
  }
  t.comment(`statuses: ${[...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(" ")}; ${runsMade} runs`);
  t.same(failures.slice(0, 30), [], `${failures.length} bad answers of ${REQUESTS}`);
  t.ok(runsMade > 0, "correctly signed deliveries did start runs");
  t.notMatch(logs.text(), new RegExp(SECRET), "the secret never reaches the log");
});
