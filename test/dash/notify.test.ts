/** The run page lists the notifications of the run's end: receiver, state, tries and why the last one failed. */
import { createServer } from "node:http";
import { join } from "node:path";
import { pino } from "pino";
import t from "tap";
import { Notifier } from "../../hub/notifier.js";
import { NO_SECRETS } from "../../hub/secrets.js";
import type { RunRecord } from "../../hub/run-record.js";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage } from "../helpers/browser.js";
import { until } from "../helpers/hub.js";

t.test("a run's notifications on its page", async (t) => {
  // A receiver that is having a bad day.
  const server = createServer((req, res) => req.resume().on("end", () => res.writeHead(503).end()));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}/hook`;
  const root = t.testdir({});
  const notifier = new Notifier({ root: join(root, "n"), host: "h1", secrets: NO_SECRETS, log: pino({ level: "silent" }), settings: () => ({ retryForMs: 60_000, backoffMs: 100, maxBackoffMs: 200 }), pageBase: () => undefined });
  await notifier.start();
  t.teardown(() => notifier.stop());
  const conf = `
flows:
  - id: told
    notify: [{url: "${url}", on: [good]}]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`;
  const browser = await launch(t);
  const a = await startApi(t, conf, { dashboard: true, notifier });
  const run = await a.hub.trigger({ flow: "told" });
  const ended = await a.end(run.ref.run);
  t.equal(ended.result, "good");
  const record: RunRecord = { v: 1, ref: ended.ref, flow: a.hub.findFlow("told"), trigger: ended.trigger, adoptedAt: ended.adoptedAt, attempt: 1, result: "good", reason: "done", endedAt: Date.now() };
  await notifier.runEnded(record);
  await until(async () => (((await a.call("GET", `/runs/${run.ref.run}`)).json as { notifications?: { attempts: unknown[] }[] }).notifications?.[0]?.attempts.length ?? 0) >= 2, 10_000, "two tries");
  const { page, errors } = await openPage(browser);
  await login(page, a.base, "viewer", "viewer-password", `/app/runs/${run.ref.run}`);
  const row = await page.waitForSelector(`[data-notifications] tr[data-delivery="${run.ref.run}.0"]`);
  t.match(await row.textContent(), new RegExp(`127\\.0\\.0\\.1:\\d+.*pending.*HTTP 503`));
  t.same(errors, []);
});
