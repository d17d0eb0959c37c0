/**
 * Notifications: a receiver (a local HTTP server) verifies each delivery's signature, sees
 * exactly one delivery per run end across a three-host cluster, and gets a delivery after
 * it was down for a while and after the sending host was killed and restarted.
 */
import { createHmac } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import t from "tap";
import { startCluster } from "../helpers/cluster.js";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";

const KEY = "hook-signing-key-9f8e7d";

interface Received {
  readonly delivery: string;
  readonly signatureOk: boolean;
  readonly body: Record<string, unknown>;
}

/** A receiver that answers `status()` (default 204) and checks signatures with KEY. */
async function receiver(port = 0, status: () => number = () => 204): Promise<{ url: string; port: number; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const want = `sha256=${createHmac("sha256", KEY).update(raw).digest("hex")}`;
      const code = status();
      if (code >= 200 && code < 300) got.push({ delivery: String(req.headers["x-floe-delivery"] ?? ""), signatureOk: req.headers["x-floe-signature"] === want, body: JSON.parse(raw.toString("utf8")) as Record<string, unknown> });
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  const addr = server.address();
  const p = typeof addr === "object" && addr !== null ? addr.port : 0;
  return { url: `http://127.0.0.1:${p}/hook`, port: p, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const flows = (url: string, extra = "") => `
common:
  secrets:
    HOOK_KEY: {file: ./hook-key}
  notify: {backoff: 200ms, max-backoff: 1s, retry-for: 10m, page-url: "https://floe.example.com"}
flows:
  - id: note
    notify:
      - {url: "${url}", secret: HOOK_KEY, on: [good, bad]}
    triggers: [{name: go, type: data, opts: {form: {fields: [{id: code, type: int, value: 0, required: false}]}}}]
    tasks:
      - {name: work, type: exec, listen: trigger.good, opts: {shell: 'sleep 0.2; exit "$code"'}}
${extra}`;

type Detail = { state: string; result?: string; ref: { execHost?: string }; notifications?: { id: string; state: string; attempts: { status?: number; error?: string }[] }[] };

t.test("one signed delivery per run end across a three-host cluster", async (t) => {
  const rx = await receiver();
  t.teardown(() => rx.close());
  const slow = `  - id: slow
    notify: [{url: "${rx.url}", on: [good, bad, lost]}]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: wait, type: exec, listen: trigger.good, opts: {cmd: "sleep 30"}}
`;
  const c = await startCluster(t, { conf: flows(rx.url, slow) });
  writeFileSync(join(c.dir, "hook-key"), KEY + "\n");
  for (const name of ["h1", "h2", "h3"]) await c.start({ name });
  await c.settle(["h1", "h2", "h3"]);
  const runs: { run: string; want: string; via: string }[] = [];
  for (let i = 0; i < 9; i++) {
    const via = `h${(i % 3) + 1}`;
    const r = await c.host(via).req("POST", "/flows/note/runs", { values: { code: i % 2 } });
    t.equal(r.status, 201);
    runs.push({ run: (r.body as { run: { ref: { run: string } } }).run.ref.run, want: i % 2 === 0 ? "good" : "bad", via });
  }
  // A cancelled run is not in `on`: nothing is sent for it.
  const cancelled = await c.host("h1").req("POST", "/flows/slow/runs", {});
  const cancelledRun = (cancelled.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await c.host("h1").req("GET", `/runs/${cancelledRun}`)).body as Detail).state === "active", 20_000, "the slow run to start");
  t.equal((await c.host("h1").req("POST", `/runs/${cancelledRun}/cancel`)).status, 200);
  const details = new Map<string, Detail>();
  await until(async () => {
    for (const { run } of runs) {
      const d = (await c.host("h1").req("GET", `/runs/${run}`)).body as Detail;
      if (d.state !== "archived") return false;
      details.set(run, d);
    }
    return rx.got.length >= runs.length;
  }, 60_000, "every run to end and be delivered");
  // Each delivery is confirmed on the host that sent it; a second from another host would come with the first.
  await until(async () => {
    for (const { run } of runs) {
      const exec = details.get(run)?.ref.execHost ?? "";
      const d = (await c.host(exec).req("GET", `/runs/${run}`)).body as Detail;
      if (d.notifications?.[0]?.state !== "delivered") return false;
    }
    return true;
  }, 20_000, "each executing host to record its delivery");
  await new Promise((r) => setTimeout(r, 1000)); // room for a duplicate to show up, were there one

  for (const { run, want } of runs) {
    const mine = rx.got.filter((g) => g.body["run"] === run);
    t.equal(mine.length, 1, `exactly one delivery for run ${run}`);
    const g = mine[0];
    t.ok(g?.signatureOk, "the signature verifies");
    t.equal(g?.body["result"], want);
    t.equal(g?.body["delivery"], g?.delivery, "the body names its delivery id");
    t.equal(g?.body["url"], `https://floe.example.com/app/runs/${run}`);
    t.equal(g?.body["flow"], "note");
  }
  t.equal(new Set(rx.got.map((g) => g.delivery)).size, rx.got.length, "delivery ids are unique");
  t.equal(((await c.host("h1").req("GET", `/runs/${cancelledRun}`)).body as Detail).result, "cancelled");
  t.same(rx.got.filter((g) => g.body["run"] === cancelledRun).map((g) => g.body), [], "a result not listed in on is not sent");
  t.ok(new Set([...details.values()].map((d) => d.ref.execHost)).size >= 2, "the runs ran on several hosts");
  const first = runs[0];
  const exec = details.get(first?.run ?? "")?.ref.execHost ?? "";
  const d = (await c.host(exec).req("GET", `/runs/${first?.run ?? ""}`)).body as Detail;
  t.match(d.notifications, [{ id: `${first?.run ?? ""}.0`, state: "delivered", attempts: [{ status: 204 }] }], "the run's detail shows the delivery");
  const other = ["h1", "h2", "h3"].find((n) => n !== exec) ?? "h1";
  const viaOther = (await c.host(other).req("GET", `/runs/${first?.run ?? ""}`)).body as Detail;
  t.match(viaOther.notifications, [{ id: `${first?.run ?? ""}.0`, state: "delivered" }], "another host shows them too (it asks the run's host)");
  const metrics = await c.host(exec).req("GET", "/metrics");
  t.match(String(metrics.body), /floe_notifications_sent_total [1-9]/);
});

t.test("a receiver down for a while gets the delivery, after the sending host was killed and restarted", async (t) => {
  const dir = t.testdir({ "hook-key": KEY });
  // The receiver's port, reserved then closed: the first tries are refused.
  const probe = await receiver();
  const port = probe.port;
  await probe.close();
  const url = `http://127.0.0.1:${port}/hook`;
  const conf = join(dir, "flows.yml");
  writeFileSync(conf, flows(url));
  const root = join(dir, "root");
  mkdirSync(root);
  let h = await startFloe({ conf, root });
  t.teardown(() => h.kill9());
  const r = await h.req("POST", "/flows/note/runs", { values: { code: 1 } });
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => {
    const d = (await h.req("GET", `/runs/${run}`)).body as Detail;
    return (d.notifications?.[0]?.attempts.length ?? 0) >= 2;
  }, 20_000, "two failed tries");
  const pending = (await h.req("GET", `/runs/${run}`)).body as Detail;
  t.equal(pending.notifications?.[0]?.state, "pending");
  t.match(pending.notifications?.[0]?.attempts[0]?.error, /ECONNREFUSED/, "a failed try says why");
  t.match(String((await h.req("GET", "/metrics")).body), /floe_notification_failures_total [1-9][\s\S]*floe_notifications_pending 1/);

  await h.kill9();
  // Up again, but answering 503 for its first two requests.
  let calls = 0;
  const rx = await receiver(port, () => (++calls <= 2 ? 503 : 200));
  t.teardown(() => rx.close());
  h = await startFloe({ conf, root });
  await until(() => rx.got.length >= 1, 30_000, "the delivery after the restart");
  t.equal(rx.got.length, 1);
  t.equal(rx.got[0]?.delivery, `${run}.0`);
  t.ok(rx.got[0]?.signatureOk);
  t.equal(rx.got[0]?.body["result"], "bad");
  await until(async () => ((await h.req("GET", `/runs/${run}`)).body as Detail).notifications?.[0]?.state === "delivered", 10_000, "the delivery recorded");
  const d = (await h.req("GET", `/runs/${run}`)).body as Detail;
  t.ok((d.notifications?.[0]?.attempts.filter((a) => a.status === 503).length ?? 0) >= 2, "the 503 answers are among the attempts");
  t.ok(calls >= 3);
});

t.test("the bodies: floe's JSON, Slack's message; the signature", async (t) => {
  const { notificationBody, runEndedNotice, signBody } = await import("../../hub/notify-body.js");
  const record = {
    v: 1 as const,
    ref: { flow: "deploy", ver: 2, run: "01KB0000000000000000QX4M", adoptedBy: "h1", execHost: "h2" },
    flow: { id: "deploy", ver: 2, name: "Deploy", reuseSpace: false, hostTags: [], resourceTags: [], env: [], triggers: [], tasks: [], queueStrategy: "append" as const, onHostLoss: "requeue" as const },
    trigger: { id: "push", type: "data", values: { secret: "not sent" }, by: "ada" },
    adoptedAt: Date.parse("2026-12-04T10:00:00Z"),
    startedAt: Date.parse("2026-12-04T10:00:01Z"),
    endedAt: Date.parse("2026-12-04T10:00:05Z"),
    attempt: 1,
    result: "bad" as const,
    reason: "task.push.bad has no listener",
  } as unknown as Parameters<typeof runEndedNotice>[0];
  const n = runEndedNotice(record, "01KB0000000000000000QX4M.0", "https://floe.example.com/app/runs/01KB0000000000000000QX4M");
  const json = JSON.parse(notificationBody(n, "json")) as Record<string, unknown>;
  t.match(json, { v: 1, event: "run.ended", flow: "deploy", ver: 2, name: "Deploy", run: "01KB0000000000000000QX4M", result: "bad", host: "h2", startedAt: "2026-12-04T10:00:01.000Z", endedAt: "2026-12-04T10:00:05.000Z", trigger: { id: "push", by: "ada" } });
  t.notOk(JSON.stringify(json).includes("not sent"), "trigger values are not sent");
  const slack = JSON.parse(notificationBody(n, "slack")) as { text: string; attachments: { color: string }[] };
  t.equal(slack.text, "floe: run <https://floe.example.com/app/runs/01KB0000000000000000QX4M|deploy 00QX4M> ended *bad*: task.push.bad has no listener");
  t.equal(slack.attachments[0]?.color, "#e01e5a");
  // RFC 4231 test case 2: key "Jefe".
  t.equal(signBody("what do ya want for nothing?", "Jefe"), "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
});

t.test("a run lost with its host is notified once, by the host that reaped it", async (t) => {
  const rx = await receiver();
  t.teardown(() => rx.close());
  const conf = `
flows:
  - id: fragile
    on-host-loss: fail
    host-tags: [doomed]
    notify: [{url: "${rx.url}", on: [lost]}]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: wait, type: exec, listen: trigger.good, opts: {cmd: "sleep 60"}}
`;
  const c = await startCluster(t, { conf });
  await c.start({ name: "h1" });
  await c.start({ name: "h2" });
  await c.start({ name: "h3", tags: ["doomed"] });
  await c.settle(["h1", "h2", "h3"]);
  const r = await c.host("h1").req("POST", "/flows/fragile/runs", {});
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await c.host("h1").req("GET", `/runs/${run}`)).body as Detail).state === "active", 20_000, "the run to start on h3");
  await c.kill9("h3");
  await until(() => rx.got.length >= 1, 30_000, "the lost run's notification");
  await until(async () => ((await c.host("h1").req("GET", `/runs/${run}`)).body as Detail).result === "lost", 10_000, "the run to be lost");
  await new Promise((res) => setTimeout(res, 1000)); // room for a duplicate from the other host, were there one
  t.equal(rx.got.length, 1, "one delivery, from one of the two hosts left");
  t.equal(rx.got[0]?.body["run"], run);
  t.equal(rx.got[0]?.body["result"], "lost");
  t.match(rx.got[0]?.body["reason"], /host h3 was lost/);
});
