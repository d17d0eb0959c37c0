/**
 * The flow page's run lists in headless Chromium: a pending run says why it waits, an active
 * one where it runs, and a long archive is paged; all of it moving live as runs change.
 */
import t from "tap";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage } from "../helpers/browser.js";
import { until } from "../helpers/hub.js";
import { dashConfig } from "../helpers/dash-flows.js";

type Json = Record<string, unknown>;
const runOf = (j: unknown): string => ((j as Json)["run"] as { ref: { run: string } }).ref.run;

t.test("pending runs say why they wait; active runs show their host; live moves between lists", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const { page, errors } = await openPage(browser);
  await login(page, a.base, "operator", "operator-password", "/app/flows/locked");
  const first = runOf((await a.call("POST", "/flows/locked/runs", { body: {} })).json);
  await page.waitForSelector(`[data-list=active] tr[data-run='${first}']`);
  t.match(await page.textContent(`[data-list=active] tr[data-run='${first}']`), /h1/, "the active run's host");
  const second = runOf((await a.call("POST", "/flows/locked/runs", { body: {} })).json);
  await page.waitForSelector(`[data-list=pending] tr[data-run='${second}'] .why:text('db')`);
  t.match(await page.textContent(`[data-list=pending] tr[data-run='${second}'] .why`), new RegExp(`db.*held by run ${first}`), "why it waits");
  t.match(await page.textContent("[data-list=pending] h3"), /Pending \(1\)/);

  await a.call("POST", `/runs/${first}/cancel`);
  await page.waitForSelector(`[data-list=archived] tr[data-run='${first}'] .badge[data-result=cancelled]`);
  await page.waitForSelector(`[data-list=active] tr[data-run='${second}']`);
  t.equal(await page.locator(`[data-list=pending] tr[data-run='${second}']`).count(), 0, "moved from pending to active, live");
  await a.call("POST", `/runs/${second}/cancel`);
  await page.waitForSelector(`[data-list=archived] tr[data-run='${second}']`);
  t.same(errors, []);
});

t.test("a long history is paged", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const runs: string[] = [];
  for (let i = 0; i < 25; i++) runs.push(runOf((await a.call("POST", "/flows/quick/runs", { body: {} })).json));
  await until(async () => (((await a.call("GET", "/runs?flow=quick&state=archived&limit=100")).json as { runs: unknown[] }).runs.length === 25), 30_000, "25 archived runs");
  const { page, errors } = await openPage(browser);
  await login(page, a.base, "viewer", "viewer-password", "/app/flows/quick");
  await page.waitForSelector("[data-list=archived] h3:text('Archived (25)')");
  const rows = (): Promise<string[]> => page.locator("[data-list=archived] tbody tr[data-run]").evaluateAll((els) => els.map((e) => e.getAttribute("data-run") ?? ""));
  const newest = [...runs].reverse();
  t.same(await rows(), newest.slice(0, 20), "the newest 20 first");
  t.ok(await page.locator("button:has-text('Newer')").isDisabled(), "no newer page");
  await page.click("button:has-text('Older')");
  await page.waitForSelector(`[data-list=archived] tr[data-run='${newest[24] ?? ""}']`);
  t.same(await rows(), newest.slice(20), "then the 5 oldest");
  t.ok(await page.locator("button:has-text('Older')").isDisabled(), "no older page");
  await page.click("button:has-text('Newer')");
  await page.waitForSelector(`[data-list=archived] tr[data-run='${newest[0] ?? ""}']`);
  t.same(await rows(), newest.slice(0, 20), "back to the newest");
  t.same(errors, []);
});
