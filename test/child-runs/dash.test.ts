/**
 * The dashboard, in headless Chromium: a `type: flow` node links to its child run's page
 * (in the node table and the node's panel), and the child's page links back to its parent.
 */
import t from "tap";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage } from "../helpers/browser.js";

t.test("a flow node links to its child run, and the child's page to its parent", async (t) => {
  const browser = await launch(t);
  const a = await startApi(
    t,
    `
flows:
  - id: pipeline
    triggers: [{name: go, type: data}]
    tasks:
      - {name: deploy, type: flow, listen: trigger.good, opts: {flow: deploy}}
  - id: deploy
    triggers: [{name: go, type: data}]
    tasks:
      - {name: push, type: exec, listen: trigger.good, opts: {shell: 'echo URL=x >> $FLOE_OUTPUT'}}
`,
    { dashboard: true },
  );
  const run = (await a.hub.trigger({ flow: "pipeline" })).ref.run;
  const end = await a.hub.waitForEnd(run, AbortSignal.timeout(30_000));
  t.equal(end.result, "good");
  const child = (await a.hub.getRun(run)).nodes.find((n) => n.id === "deploy")?.child;
  if (child === undefined) throw new Error("no child run");
  const { page } = await openPage(browser);
  await login(page, a.base, "viewer", "viewer-password", `/app/runs/${run}`);
  await page.waitForSelector(`main[data-ready] tr[data-node-row=deploy] a[data-child-link="${child}"]`);
  await page.click("tr[data-node-row=deploy] th button");
  await page.waitForSelector(`a[data-child-run="${child}"]`);
  await page.click(`tr[data-node-row=deploy] a[data-child-link="${child}"]`);
  await page.waitForURL((u) => u.pathname === `/app/runs/${child}`);
  await page.waitForSelector("main[data-ready] [data-parent]");
  t.match(await page.textContent("[data-parent]"), `${run} (task deploy)`);
  await page.click("[data-parent] a");
  await page.waitForURL((u) => u.pathname === `/app/runs/${run}`);
  await page.waitForSelector("main[data-ready] tr[data-node-row=deploy]");
  t.pass("followed the links both ways");
});
