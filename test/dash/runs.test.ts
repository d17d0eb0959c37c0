/**
 * The dashboard end to end in headless Chromium, as an operator: start a run from a data
 * trigger's form and watch its nodes turn green without a reload, read a node's log while
 * it prints (colours rendered, long logs paged), fill a data node's form, cancel a long
 * run, and ride out a dropped connection. Screenshots go to test-artifacts/dash/.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage, shot, unlabelled } from "../helpers/browser.js";
import { until } from "../helpers/hub.js";
import { dashConfig } from "../helpers/dash-flows.js";

type Json = Record<string, unknown>;

t.test("start a run from a form, watch it go green, fill its data form", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const w = await openPage(browser);
  const { page } = w;
  await login(page, a.base, "operator", "operator-password");
  t.match(await page.textContent("#me"), /operator/, "the header names the user");
  await page.waitForSelector("#conn[data-state=live]");

  await page.click("a[href='/app/flows/hello']");
  await page.waitForSelector("main[data-ready] svg.graph g[data-node=approve]");
  t.equal(await page.locator("svg.graph g.c-merge[data-node=both]").count(), 1, "the merge is drawn as a merge");
  t.equal(await page.locator("svg.graph g.t-end[data-node=fin]").count(), 1, "the end node is drawn as an end");
  t.ok(await page.locator("svg.graph text.elabel", { hasText: "bad" }).count(), "edges are labelled by their tag");
  t.match(await page.textContent("[data-trigger-card=push]"), /\/build\/api\/hooks\/hello\/push/, "the webhook address is shown");
  t.notMatch(await page.content(), /very-secret-value/, "no webhook secret on the page");
  t.equal(await page.inputValue("form[data-trigger=form] input[data-field=count]"), "2", "defaults are filled in");
  t.equal(await page.getAttribute("form[data-trigger=form] input[data-field=name]", "required"), "", "required fields are required");
  t.same(await unlabelled(page), [], "every control of the flow page has a label");
  await shot(page, "flow");

  // Mark the document: if the page reloads, the mark is gone.
  await page.evaluate("window.__floeMark = 42");
  await page.fill("form[data-trigger=form] input[data-field=name]", "Ada");
  await page.fill("form[data-trigger=form] input[data-field=count]", "3");
  await page.click("form[data-trigger=form] button[type=submit]");
  await page.waitForURL(/\/app\/runs\/[0-9A-Z]+$/);
  const run = new URL(page.url()).pathname.split("/").pop() ?? "";
  for (const n of ["say", "check", "both"]) await page.waitForSelector(`svg.graph g[data-node=${n}][data-state=good]`);
  await page.waitForSelector("svg.graph g[data-node=approve].needs-input");
  t.equal(await page.evaluate("window.__floeMark"), 42, "no reload from the form to a green graph");
  t.equal(await page.getAttribute("g[data-node=push]", "data-state"), "skipped", "the trigger that did not start the run is not lit");
  t.ok(await page.locator("path.edge.fired[data-from=say][data-to=both]").count(), "the edge that carried task.say.good is drawn as fired");
  t.match(await page.textContent("[data-runref]"), new RegExp(`hello/1/${run} adopted by h1, on h1`), "the RunRef and host are shown");
  t.match(await page.textContent("tr[data-node-row=say]"), /exec\s*good\s*1\s*0/, "attempts and exit code of a node");

  // The say node's output, opened by keyboard from the graph.
  await page.focus("g[data-node=say]");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".log[data-log=say] .l:has-text('hello Ada')");
  t.equal(await page.locator(".log[data-log=say] .l", { hasText: "hello Ada" }).count(), 3, "three hellos in the log");
  await page.click("tr[data-node-row=check] button");
  await page.waitForSelector(".log[data-log=check] span.a-fg2:has-text('all green')");
  t.notMatch((await page.locator(".log[data-log=check] .l.s-out").allTextContents()).join("\n"), /\x1b|\[32m/, "no raw escape codes in the output");

  // The data node's form: fill it, and the run goes on to its end.
  t.same(await unlabelled(page), [], "every control of the run page has a label");
  await shot(page, "run-waiting-for-input");
  await page.check("form[data-node-form=approve] input[data-field=ok]");
  await page.fill("form[data-node-form=approve] input[data-field=note]", "looks fine");
  await page.click("form[data-node-form=approve] button[type=submit]");
  await page.waitForSelector("svg.graph g[data-node=fin][data-state=good]");
  await page.waitForSelector("h1 .badge[data-result=good]");
  t.equal(await page.locator("form[data-node-form=approve]").count(), 0, "the form closes once filled");
  t.equal(await page.getAttribute("g[data-node=notify]", "data-state"), "skipped", "a node the run never reached is skipped");
  const detail = (await a.call("GET", `/runs/${run}`)).json as { result: string; nodes: { id: string; values?: Json }[] };
  t.equal(detail.result, "good");
  t.same(detail.nodes.find((n) => n.id === "approve")?.values, { ok: "true", note: "looks fine" }, "the form's values reached the run");
  t.equal(await page.evaluate("window.__floeMark"), 42, "still the same document");
  await shot(page, "run");

  // Re-run: the same trigger with the same form values, as a new run.
  await page.click("#rerun");
  await page.waitForURL((u) => u.pathname.startsWith("/app/runs/") && !u.pathname.endsWith(run));
  const again = new URL(page.url()).pathname.split("/").pop() ?? "";
  const rerun = (await a.call("GET", `/runs/${again}`)).json as { trigger: { id: string; values: Json } };
  t.equal(rerun.trigger.id, "form");
  t.match(rerun.trigger.values, { name: "Ada", count: "3" }, "re-run with the same values");

  await page.click("header a.brand");
  await page.waitForSelector(`main[data-ready] #recent-runs tr[data-run='${run}']`);
  await page.waitForSelector("#flows tr[data-flow=hello] td[data-count=archived]:text('1')");
  t.same(w.errors, [], "no script errors");
  t.same(w.external, [], "nothing fetched from outside the host");
  await shot(page, "dash");
});

t.test("a node's log while it prints; long logs in pages; cancel a long run", async (t) => {
  const browser = await launch(t);
  const gate = t.testdir();
  const a = await startApi(t, dashConfig(gate), { dashboard: true });
  const w = await openPage(browser);
  const { page } = w;
  const start = await a.call("POST", "/flows/slow/runs", { body: {} });
  const run = ((start.json as Json)["run"] as { ref: { run: string } }).ref.run;
  await login(page, a.base, "operator", "operator-password", `/app/runs/${run}?node=gated`);
  await page.waitForSelector(".log[data-log=gated] .l.s-out:has-text('waiting for the gate')");
  t.equal(await page.getAttribute("g[data-node=gated]", "data-state"), "running");
  t.equal(await page.locator(".log[data-log=gated] .l.s-out:has-text('released')").count(), 0, "not released yet");
  writeFileSync(join(gate, "go"), "");
  await page.waitForSelector(".log[data-log=gated] .l.s-out:has-text('released')");
  await page.waitForSelector(".log[data-log=gated] span.a-fg1.a-b:has-text('red alert')");
  await page.waitForSelector("g[data-node=gated][data-state=good]");
  await page.waitForSelector("g[data-node=nap][data-state=running]");

  // 2,500 lines (and floe's own lines about the task): the last 1,000 first, earlier ones a page at a time.
  const lines = ((await a.call("GET", `/runs/${run}`)).json as { nodes: { id: string; logLines: number }[] }).nodes.find((n) => n.id === "many")?.logLines ?? 0;
  t.ok(lines > 2500, "the long log is long");
  await page.click("tr[data-node-row=many] button");
  await page.waitForSelector(`.log[data-log=many] .l[data-seq='${lines}']`);
  t.equal(await page.locator(".log[data-log=many] .l").count(), 1000, "one page of lines");
  t.equal(await page.getAttribute(".log[data-log=many] .l >> nth=0", "data-seq"), String(lines - 999));
  await page.click(`button:has-text('Show earlier lines (${lines - 1000} not shown)')`);
  await page.waitForSelector(`.log[data-log=many] .l[data-seq='${lines - 1999}']`);
  t.equal(await page.locator(".log[data-log=many] .l").count(), 2000, "two pages of lines");
  t.ok(await page.locator(".log[data-log=many] .l.s-out", { hasText: /^line 1000$/ }).count(), "an earlier line");

  // Cancel: asked once more, then the run ends cancelled and its task is killed.
  await page.click("#cancel-run");
  await page.click("#cancel-yes");
  await page.waitForSelector("h1 .badge[data-result=cancelled]");
  await page.waitForSelector("g[data-node=nap][data-state=cancelled]");
  t.equal(await page.locator("#cancel-run").count(), 0, "no cancel button on an ended run");
  t.equal(((await a.call("GET", `/runs/${run}`)).json as Json)["result"], "cancelled");
  t.same(w.errors, [], "no script errors");
});

t.test("the connection drops: a visible reconnecting state, then the page catches up", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const w = await openPage(browser);
  const { page } = w;
  await login(page, a.base, "operator", "operator-password");
  await page.waitForSelector("#conn[data-state=live]");
  // Refuse the event stream, then cut every open connection: the browser can not get back.
  await page.route("**/build/api/events*", (r) => r.abort("connectionrefused"));
  a.app.server.closeAllConnections();
  await page.waitForSelector("#conn[data-state=reconnecting]");
  t.match(await page.textContent("#conn"), /reconnecting/);
  t.ok(await page.locator("#flows tr[data-flow=hello]").count(), "the page still shows what it knew");
  await shot(page, "dash-reconnecting");
  const start = await a.call("POST", "/flows/hello/runs", { body: { values: { name: "Lin" } } });
  const run = ((start.json as Json)["run"] as { ref: { run: string } }).ref.run;
  await page.unroute("**/build/api/events*");
  await page.waitForSelector("#conn[data-state=live]", { timeout: 30_000 });
  await page.waitForSelector(`#recent-runs tr[data-run='${run}']`);
  await until(async () => (await page.locator(`#recent-runs tr[data-run='${run}'] .badge`).count()) > 0, 10_000, "the run's state");
  t.pass("caught up with a run started while disconnected");
});

t.test("reject a data form with a reason", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  const start = await a.call("POST", "/flows/hello/runs", { body: { values: { name: "Rex" } } });
  const run = ((start.json as Json)["run"] as { ref: { run: string } }).ref.run;
  const { page, errors } = await openPage(browser);
  await login(page, a.base, "boss", "boss-password", `/app/runs/${run}`);
  await page.waitForSelector("form[data-node-form=approve]");
  await page.fill("form[data-node-form=approve] input[name=reason]", "not today");
  await page.click("form[data-node-form=approve] button:has-text('Reject')");
  await page.waitForSelector("g[data-node=approve][data-state=bad]");
  await page.waitForSelector("g[data-node=notify][data-state=good]");
  await page.click("g[data-node=approve]");
  await page.waitForSelector(".node-panel .why:text('rejected: not today')");
  t.equal(await page.locator("form[data-node-form=approve]").count(), 0, "the form is gone");
  t.same(errors, []);
});
