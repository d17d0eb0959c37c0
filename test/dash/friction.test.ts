/**
 * Friction on the dashboard (issue 22): a tall graph shown whole, a clicked node's panel
 * scrolled to, runs tables that scroll in their own box on a phone, the blocking run a
 * link, "running for" ticking every second, no duration for a form still waiting,
 * textareas for text fields, and no start time for a run cancelled before it started.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage, overflowsSideways, shot } from "../helpers/browser.js";
import { dashConfig } from "../helpers/dash-flows.js";
import { repoRoot } from "../helpers/paths.js";

type Json = Record<string, unknown>;

// A flow whose trigger and data node ask for free text.
const NOTES_FLOW = `
  - id: notes
    name: Notes
    triggers: [{name: go, type: data, opts: {form: {title: Notes, fields: [{id: body, prompt: Body, type: text, required: false}]}}}]
    tasks:
      - {name: review, type: data, listen: trigger.good, opts: {form: {title: Review, fields: [{id: comment, prompt: Comment, type: text}]}}}
`;

const runOf = (r: { json: unknown }): string => ((r.json as Json)["run"] as { ref: { run: string } }).ref.run;

t.test("the example build flow's graph is shown whole", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, readFileSync(join(repoRoot, "flows/examples/flows.yml"), "utf8"), { dashboard: true });
  const { page, errors } = await openPage(browser, { width: 1280, height: 800 });
  await login(page, a.base, "operator", "operator-password", "/app/flows/build");
  await page.waitForSelector("main[data-ready] svg.graph g[data-node=done]");
  const fits = await page.evaluate(`(() => {
    const wrap = document.querySelector(".graph-wrap").getBoundingClientRect();
    const end = document.querySelector("g[data-node=done]").getBoundingClientRect();
    return end.top >= wrap.top && end.bottom <= wrap.bottom + 0.5;
  })()`);
  t.equal(fits, true, "the end node lies inside the graph's box, not cut off below it");
  await shot(page, "friction-flow-build");
  t.same(errors, []);
});

t.test("run page: panel scrolled to, blocking run linked, running-for ticks, waiting form without a duration", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()) + NOTES_FLOW, { dashboard: true });
  const holder = runOf(await a.call("POST", "/flows/locked/runs", { body: {} }));
  const blocked = runOf(await a.call("POST", "/flows/locked/runs", { body: {} }));
  const notes = runOf(await a.call("POST", "/flows/notes/runs", { body: { values: { body: "first line" } } }));
  const w = await openPage(browser, { width: 1280, height: 800 });
  const { page } = w;

  // The blocked run names the run holding its resource: a link to it.
  await login(page, a.base, "operator", "operator-password", `/app/runs/${blocked}`);
  await page.waitForSelector(`[data-waiting] a[href='/app/runs/${holder}']`, { timeout: 10_000 });
  t.match(await page.textContent("[data-waiting]"), new RegExp(`held by run ${holder}`), "the waiting reason keeps its words");

  // "running for" of the holder moves every second.
  await page.goto(`${a.base}/app/runs/${holder}`);
  await page.waitForSelector("main[data-ready] dl.facts [data-since]");
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    seen.push((await page.textContent("dl.facts [data-since]")) ?? "");
    await page.waitForTimeout(1100);
  }
  t.equal(new Set(seen).size, seen.length, `running for changes every second (${seen.join(", ")})`);

  // A data node still waiting shows no duration, and its panel is scrolled to when clicked.
  await page.goto(`${a.base}/app/runs/${notes}`);
  await page.waitForSelector("main[data-ready] g[data-node=review].needs-input");
  t.notMatch((await page.textContent("tr[data-node-row=review] td:last-child")) ?? "", /\d\s*m?s$/, "no 'took' for a form still waiting");
  t.equal(await page.locator("form[data-node-form=review] textarea[data-field=comment]").count(), 1, "a text field is a textarea");
  await page.evaluate("window.scrollTo(0, 0)");
  await page.click("g[data-node=review]");
  await page.waitForSelector(".node-panel:not([hidden])");
  await page.waitForTimeout(600);
  const inView = await page.evaluate(`(() => { const r = document.querySelector(".node-panel").getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight - 40; })()`);
  t.equal(inView, true, "the node's panel is scrolled into view");
  t.notMatch((await page.textContent(".node-panel .node-details")) ?? "", /took/, "the panel shows no duration for a waiting form");
  await shot(page, "friction-run-panel");
  t.same(w.errors, [], "no script errors");
});

t.test("a text field is a textarea on the flow page", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()) + NOTES_FLOW, { dashboard: true });
  const { page } = await openPage(browser, { width: 1280, height: 800 });
  await login(page, a.base, "operator", "operator-password", "/app/flows/notes");
  await page.waitForSelector("main[data-ready] form[data-trigger=go]");
  t.equal(await page.locator("form[data-trigger=go] textarea[data-field=body]").count(), 1, "type: text renders as a textarea");
});

t.test("a run cancelled before it started shows no start time", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  runOf(await a.call("POST", "/flows/locked/runs", { body: {} }));
  const blocked = runOf(await a.call("POST", "/flows/locked/runs", { body: {} }));
  t.equal((await a.call("POST", `/runs/${blocked}/cancel`, { body: {} })).status, 200);
  const { page } = await openPage(browser, { width: 1280, height: 800 });
  await login(page, a.base, "operator", "operator-password", `/app/runs/${blocked}`);
  await page.waitForSelector("main[data-ready] h1 .badge[data-result=cancelled]");
  t.notMatch((await page.textContent("dl.facts")) ?? "", /started/, "no start time on the run page");
  await page.goto(`${a.base}/app/dash`);
  await page.waitForSelector(`main[data-ready] #recent-runs tr[data-run='${blocked}']`);
  t.equal(await page.locator(`#recent-runs tr[data-run='${blocked}'] time`).count(), 0, "no start time in the recent runs");
});

t.test("runs tables on a phone scroll inside their own box", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  runOf(await a.call("POST", "/flows/locked/runs", { body: {} }));
  runOf(await a.call("POST", "/flows/locked/runs", { body: {} }));
  runOf(await a.call("POST", "/flows/quick/runs", { body: {} }));
  const { page } = await openPage(browser, { width: 390, height: 844 });
  await login(page, a.base, "operator", "operator-password", "/app/dash");
  await page.waitForSelector("main[data-ready] #recent-runs tr[data-run]");
  t.equal(await overflowsSideways(page), false, "the dashboard does not scroll sideways");
  await shot(page, "friction-dash-390");
  for (const flow of ["locked", "quick"]) {
    await page.goto(`${a.base}/app/flows/${flow}`);
    await page.waitForSelector("main[data-ready] [data-list] tr[data-run]");
    t.equal(await overflowsSideways(page), false, `the ${flow} flow page does not scroll sideways`);
    const cut = await page.evaluate(`(() => [...document.querySelectorAll("table")].filter((tb) => {
      const box = tb.closest(".scroll-x") ?? tb.parentElement;
      const card = tb.closest(".card").getBoundingClientRect();
      return box.getBoundingClientRect().right > card.right + 0.5;
    }).length)()`);
    t.equal(cut, 0, `no table box of the ${flow} flow page runs past its card`);
    await shot(page, `friction-flow-${flow}-390`);
  }
});
