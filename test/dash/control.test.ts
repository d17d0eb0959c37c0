/**
 * Run control on the dashboard, in headless Chromium as an operator: pause a run and see it
 * held (its next task waiting), resume it; on a failed run, "retry failed" makes a re-run
 * from the failed node, linked both ways; "re-run from here" on a selected node; a debounced
 * trigger's reason shown like other waiting reasons.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage, shot, unlabelled } from "../helpers/browser.js";
import { config, until } from "../helpers/hub.js";

t.test("pause, resume, retry failed and re-run from here on the run page", async (t) => {
  const dir = t.testdir({});
  const gate = join(dir, "gate");
  const fixed = join(dir, "fixed");
  const browser = await launch(t);
  const a = await startApi(
    t,
    `
flows:
  - id: ctl
    triggers: [{name: go, type: data}]
    tasks:
      - {name: one, type: exec, listen: trigger.good, opts: {shell: 'while [ ! -f ${gate} ]; do sleep 0.05; done'}}
      - {name: two, type: exec, listen: task.one.good, opts: {shell: 'test -f ${fixed}'}}
      - {name: three, type: exec, listen: task.two.good, opts: {shell: 'true'}}
  - id: deb
    queue-strategy: debounce
    debounce: 30s
    triggers: [{name: go, type: data}]
    tasks:
      - {name: one, type: exec, listen: trigger.good, opts: {shell: 'true'}}
`,
    { dashboard: true },
  );
  const run = (await a.hub.trigger({ flow: "ctl" })).ref.run;
  const w = await openPage(browser);
  const { page } = w;
  await login(page, a.base, "operator", "operator-password", `/app/runs/${run}`);
  await page.waitForSelector("main[data-ready] svg.graph g[data-node=one][data-state=running]");

  await page.click("#pause-run");
  await page.waitForSelector("[data-paused]");
  t.match(await page.textContent("[data-paused]"), /Paused by operator/);
  await page.waitForSelector("#resume-run");
  writeFileSync(gate, "");
  await page.waitForSelector("svg.graph g[data-node=one][data-state=good]");
  await until(async () => (await a.hub.getRun(run)).nodes.find((n) => n.id === "two")?.reason?.startsWith("paused") === true, 20_000, "two held");
  t.equal((await a.hub.getRun(run)).nodes.find((n) => n.id === "two")?.state, "waiting", "the next task waits while paused");
  await page.waitForSelector("svg.graph g[data-node=two] text:has-text('waiting · paused')");
  t.same(await unlabelled(page), [], "every control of the paused run's page has a label");
  await shot(page, "run-paused");
  await page.click("#resume-run");
  await page.waitForSelector("h1 .badge[data-result=bad]");
  t.equal(await page.locator("[data-paused]").count(), 0, "no longer shown paused");

  // Retry failed: a re-run from node two, linked both ways.
  writeFileSync(fixed, "");
  await page.click("#retry-failed");
  await page.waitForURL((u) => !u.pathname.endsWith(run));
  await page.waitForSelector("main[data-ready] h1 .badge[data-result=good]");
  const retry = new URL(page.url()).pathname.split("/").pop() ?? "";
  t.match(await page.textContent("[data-rerun-of]"), new RegExp(`${run} from two`));
  t.equal((await a.hub.getRun(retry)).rerunOf?.from, "two");
  t.equal((await a.hub.getRun(retry)).nodes.find((n) => n.id === "one")?.reason?.startsWith("replayed") ?? false, true, "one was replayed, not run");
  await page.waitForSelector("svg.graph g[data-node=one] text:has-text('good · replayed')");
  await shot(page, "run-retried");

  // Re-run from here: select node three, then the button.
  await page.click("tr[data-node-row=three] button");
  await page.waitForSelector("#rerun-from[data-from=three]");
  await page.click("#rerun-from");
  await page.waitForURL((u) => !u.pathname.endsWith(retry));
  await page.waitForSelector("main[data-ready] h1 .badge[data-result=good]");
  const third = new URL(page.url()).pathname.split("/").pop() ?? "";
  t.same((await a.hub.getRun(third)).rerunOf, { run: retry, from: "three" });
  await page.goto(`${a.base}/app/runs/${retry}`);
  await page.waitForSelector(`main[data-ready] [data-reruns] a[data-run-link="${third}"]`);

  // A debounced trigger waits with its reason, shown like other waiting reasons.
  const held = (await a.hub.trigger({ flow: "deb" })).ref.run;
  await page.goto(`${a.base}/app/runs/${held}`);
  await page.waitForSelector("main[data-ready] [data-waiting]");
  t.match(await page.textContent("[data-waiting]"), /^debouncing until \d{4}-/);
  t.ok(existsSync(gate));
});

t.test("the flow page lists tainted runs and re-runs them", async (t) => {
  const dir = t.testdir({});
  const trail = join(dir, "trail");
  const flows = (b: string) => `
flows:
  - id: tf
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: 'echo a >> ${trail}'}}
      - {name: b, type: exec, listen: task.a.good, opts: {shell: 'echo ${b} >> ${trail}'}}
`;
  const browser = await launch(t);
  const a = await startApi(t, flows("b1"), { dashboard: true });
  const run = (await a.hub.trigger({ flow: "tf" })).ref.run;
  await a.end(run);
  a.hub.reload(config(flows("b2")));
  const w = await openPage(browser);
  const { page } = w;
  await login(page, a.base, "operator", "operator-password", "/app/flows/tf");
  await page.waitForSelector(`#tainted tr[data-tainted="${run}"]`);
  t.match(await page.textContent(`#tainted tr[data-tainted="${run}"]`), /node "b" changed/);
  t.same(await unlabelled(page), [], "every control of the flow page has a label");
  await shot(page, "flow-tainted");
  await page.click(`button[data-tainted-rerun="${run}"]`);
  await page.waitForSelector("#tainted", { state: "hidden" });
  await until(async () => (await a.hub.getRun(run)).reruns?.length === 1, 20_000, "the re-run");
  const again = (await a.hub.getRun(run)).reruns?.[0]?.run ?? "";
  t.equal((await a.end(again)).result, "good");
  t.equal((await a.hub.getRun(again)).rerunOf?.from, "b");
});
