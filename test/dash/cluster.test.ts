/**
 * The dashboard of one host of a three-host cluster, in headless Chromium: h1's dash lists
 * every host, shows a run that executes on h3 (the only gpu host) with its host, and tails
 * that run's log live while h3 prints it. Screenshots go to test-artifacts/dash/.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { testUsers } from "../helpers/api.js";
import { launch, login, openPage, shot } from "../helpers/browser.js";
import { startCluster } from "../helpers/cluster.js";

t.test("the dashboard of h1 shows a run executing on h3, and its log live", async (t) => {
  const dir = t.testdir({});
  const gate = join(dir, "gate");
  const operator = (await testUsers()).find((u) => u.name === "operator");
  const c = await startCluster(t, {
    conf: `
common:
  users:
    - {name: operator, role: operator, password-hash: "${operator?.passwordHash ?? ""}"}
flows:
  - id: far
    name: Runs where the GPU is
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks:
      - name: train
        type: exec
        listen: trigger.good
        opts: {shell: 'for i in 1 2 3; do echo "step $i on $FLOE_HOST"; done; while [ ! -f ${gate} ]; do sleep 0.05; done; echo "finished on $FLOE_HOST"'}
      - {name: done, type: end, listen: task.train.good}
`,
  });
  await Promise.all([c.start({ name: "h1", tags: ["linux"] }), c.start({ name: "h2", tags: ["linux"] }), c.start({ name: "h3", tags: ["gpu"] })]);
  await c.settle(["h1", "h2", "h3"]);

  const browser = await launch(t);
  const w = await openPage(browser);
  const { page } = w;
  const h1 = c.host("h1").url;
  await login(page, h1, "operator", "operator-password");
  await page.waitForSelector("#conn[data-state=live]");
  for (const name of ["h1", "h2", "h3"]) await page.waitForSelector(`tr[data-host=${name}]:has-text('up')`);
  t.match(await page.textContent("tr[data-host=h3]"), /gpu/, "h1's dash shows h3 and its tags");

  // Started through h2's API: h1 learns of it from the cluster, not from its own hub.
  const r = await c.host("h2").req("POST", "/flows/far/runs", {});
  t.equal(r.status, 201);
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
  await page.waitForSelector(`tr[data-run='${run}'][data-state=active]`);
  t.match(await page.textContent(`tr[data-run='${run}']`), /h3/, "the run is shown active on h3, live, on h1's dash");
  await page.waitForSelector("tr[data-flow=far] td[data-count=active]:text-is('1')");
  await page.waitForSelector("tr[data-host=h3]:has-text('1 of 4 used')");
  const order: (string | null)[] = [];
  for (const row of await page.locator("tr[data-host]").all()) order.push(await row.getAttribute("data-host"));
  t.same(order, ["h1", "h2", "h3"], "hosts in name order");
  await shot(page, "cluster-dash");

  await page.click(`tr[data-run='${run}'] a`);
  await page.waitForURL(new RegExp(`/app/runs/${run}$`));
  await page.waitForSelector("main[data-ready]");
  t.match(await page.textContent("[data-runref]"), new RegExp(`far/1/${run} adopted by h2, on h3`), "the RunRef names both hosts");
  await page.click("tr[data-node-row=train] button");
  await page.waitForSelector(".log[data-log=train] .l:has-text('step 3 on h3')");
  t.same((await page.locator(".log[data-log=train] .l").allTextContents()).filter((l) => l.includes("finished on h3")), [], "the task is still running");
  await page.evaluate("window.__floeMark = 7");
  writeFileSync(gate, "");
  await page.waitForSelector(".log[data-log=train] .l:has-text('finished on h3')");
  await page.waitForSelector("h1 .badge[data-result=good]");
  t.equal(await page.evaluate("window.__floeMark"), 7, "the log and the result came in live, without a reload");
  await shot(page, "cluster-run");
  t.same(w.errors, [], "no script errors");
  t.same(w.external, [], "nothing fetched from outside the host");
});
