/**
 * The dashboard's doors and weight in headless Chromium: a wrong password, a viewer who is
 * offered no action, logging in with the admin token and out again, every page small and
 * served from the host alone, and a narrow window. Screenshots go to test-artifacts/dash/.
 */
import t from "tap";
import { ADMIN, startApi } from "../helpers/api.js";
import { launch, login, openPage, overflowsSideways, shot, unlabelled } from "../helpers/browser.js";
import { until } from "../helpers/hub.js";
import { dashConfig } from "../helpers/dash-flows.js";

type Json = Record<string, unknown>;
const MAX_PAGE_BYTES = 300 * 1024;

t.test("a wrong password shows an error; the page itself loads without credentials", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const w = await openPage(browser);
  const { page } = w;
  const res = await page.goto(`${a.base}/app/runs/01NOSUCHRUN`);
  t.equal(res?.status(), 200, "the shell is public");
  t.match(res?.headers()["content-security-policy"] ?? "", /script-src 'self'/, "a strict content security policy");
  await page.waitForURL(/\/app\/login\?next=%2Fapp%2Fruns%2F01NOSUCHRUN/);
  await page.fill("#login-user", "operator");
  await page.fill("#login-password", "not-the-password");
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#login-error:text('wrong user name or password')");
  t.match(page.url(), /\/app\/login/, "still on the login page");
  t.same(await unlabelled(page), [], "the login form is labelled");
  await shot(page, "login-error");
  await page.fill("#login-password", "operator-password");
  await page.click("#login-form button[type=submit]");
  await page.waitForURL(/\/app\/runs\/01NOSUCHRUN$/, { waitUntil: "commit" });
  await page.waitForSelector("main [role=alert]:text('no run')");
  t.pass("after logging in, back to the page asked for");
  t.same(w.errors.filter((e) => !/status of 404/.test(e)), [], "no errors but the missing run's 404");
});

t.test("a viewer sees everything and is offered no action", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const start = await a.call("POST", "/flows/hello/runs", { body: { values: { name: "Vi" } } });
  const run = ((start.json as Json)["run"] as { ref: { run: string } }).ref.run;
  await until(async () => (((await a.call("GET", `/runs/${run}`)).json as Json)["nodes"] as { id: string; enabled?: boolean }[]).some((n) => n.id === "approve" && n.enabled === true), 20_000, "the form to open");
  const w = await openPage(browser);
  const { page } = w;
  await login(page, a.base, "viewer", "viewer-password", "/app/flows/hello");
  await page.waitForSelector("[data-trigger-card=form]");
  t.equal(await page.locator("form[data-trigger]").count(), 0, "no start form");
  t.equal(await page.locator("button:has-text('Start run')").count(), 0, "no start button");
  t.match(await page.textContent("[data-trigger-card=form]"), /Operators can start runs/);
  await page.click(`a[href='/app/runs/${run}']`);
  await page.waitForSelector("main[data-ready] g[data-node=approve].needs-input");
  t.equal(await page.locator("#cancel-run").count(), 0, "no cancel button");
  t.equal(await page.locator("#rerun").count(), 0, "no re-run button");
  t.equal(await page.locator("form[data-node-form]").count(), 0, "no data form to fill");
  t.match(await page.textContent("[data-node-form=approve]"), /waits for an operator/);
  t.equal(await page.locator("main button:has-text('Send'), main button:has-text('Reject')").count(), 0, "nothing to send or reject");
  await shot(page, "run-as-viewer");
  // The API agrees: a viewer's session may not act.
  const cookies = await w.context.cookies();
  const sesh = cookies.find((c) => c.name === "floe-sesh");
  t.ok(sesh?.httpOnly, "the session cookie is HttpOnly");
  t.equal((await a.call("POST", `/runs/${run}/cancel`, { token: null, headers: { cookie: `floe-sesh=${sesh?.value ?? ""}` } })).status, 403);
  t.same(w.errors, []);
});

t.test("log in with the admin token, log out", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const { page, errors } = await openPage(browser);
  await page.goto(`${a.base}/app/dash`);
  await page.click(".token-login summary");
  await page.fill("#login-token", "not-a-token");
  await page.click(".token-login button[type=submit]");
  await page.waitForSelector("#login-error:text('not valid')");
  await page.fill("#login-token", ADMIN);
  await page.click(".token-login button[type=submit]");
  await page.waitForSelector("main[data-ready] #flows tr[data-flow=hello]");
  t.match(await page.textContent("#me"), /admin \(admin\)/);
  await page.click("#me button:has-text('Log out')");
  await page.waitForSelector("#login-form");
  await page.goto(`${a.base}/app/dash`);
  await page.waitForSelector("#login-form");
  t.pass("logged out: the dashboard asks to log in again");
  t.same(errors, []);
});

t.test("every page is small, comes from the host alone, and works in a narrow window", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const start = await a.call("POST", "/flows/hello/runs", { body: { values: { name: "Wei" } } });
  const run = ((start.json as Json)["run"] as { ref: { run: string } }).ref.run;
  await until(async () => ((await a.call("GET", `/runs/${run}`)).json as Json)["state"] === "active", 20_000, "active");
  const first = await openPage(browser);
  await login(first.page, a.base, "operator", "operator-password");
  const storageState = await first.context.storageState();
  const pages: [string, string][] = [
    ["dash", "/app/dash"],
    ["flow", "/app/flows/hello"],
    ["run", `/app/runs/${run}?node=say`],
  ];
  for (const [name, path] of pages) {
    // A fresh browser cache each time: the weight of a first visit.
    const w = await openPage(browser, { storageState });
    await w.page.goto(`${a.base}${path}`);
    await w.page.waitForSelector("main[data-ready]");
    if (name === "run") await w.page.waitForSelector(".log[data-log=say] .l");
    await until(() => w.bytes() > 0, 5000, "sizes");
    t.ok(w.bytes() < MAX_PAGE_BYTES, `${name}: ${w.bytes()} bytes transferred (< ${MAX_PAGE_BYTES})`);
    t.same(w.external, [], `${name}: nothing fetched from outside 127.0.0.1`);
    t.same(w.errors, [], `${name}: no script errors`);

    const narrow = await openPage(browser, { storageState, width: 380, height: 800 });
    await narrow.page.goto(`${a.base}${path}`);
    await narrow.page.waitForSelector("main[data-ready]");
    t.notOk(await overflowsSideways(narrow.page), `${name}: no sideways scrolling at 380px`);
    await shot(narrow.page, `narrow-${name}`);
  }
});
