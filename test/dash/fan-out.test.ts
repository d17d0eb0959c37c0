/**
 * The run page of a for-each task: its instances with counts by state, exit codes, and
 * each instance's output shown alone on request.
 */
import t from "tap";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage } from "../helpers/browser.js";

const CONF = `
flows:
  - id: fan
    triggers: [{name: go, type: data}]
    tasks:
      - name: each
        type: exec
        listen: trigger.good
        for-each: [red, green, blue]
        ignore-fail: true
        opts: {shell: 'echo "painting $FLOE_ITEM"; test "$FLOE_ITEM" != green || exit 4'}
      - {name: fin, type: end, listen: task.each.good}
`;

t.test("a fan-out node's instances and each one's log on the run page", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, CONF, { dashboard: true });
  const run = await a.hub.trigger({ flow: "fan" });
  t.equal((await a.end(run.ref.run)).result, "good");
  const { page, errors } = await openPage(browser);
  await login(page, a.base, "viewer", "viewer-password", `/app/runs/${run.ref.run}`);
  await page.waitForSelector("g[data-node=each][data-state=good]");
  await page.click("g[data-node=each]");
  await page.waitForSelector(".node-panel [data-instances] tr[data-instance='2']");
  t.match(await page.textContent(".node-panel [data-instance-counts]"), /^3: 2 good · 1 bad$/);
  t.equal(await page.getAttribute(".node-panel tr[data-instance='1'] [data-instance-state]", "data-instance-state"), "bad");
  t.match(await page.textContent(".node-panel tr[data-instance='1']"), /green.*4/);
  await page.waitForSelector(".node-panel .log .l[data-instance='2']");
  const visibleLines = async (): Promise<string[]> => page.$$eval(".node-panel .log .l.s-out", (els) => els.filter((e) => !(e as unknown as { hidden: boolean }).hidden).map((e) => e.textContent ?? ""));
  t.same((await visibleLines()).sort(), ["#0 painting red", "#1 painting green", "#2 painting blue"], "every instance's lines, each marked");
  await page.click(".node-panel tr[data-instance='2'] button");
  await page.waitForSelector(".node-panel tr[data-instance='2'] button[aria-pressed=true]");
  t.same(await visibleLines(), ["#2 painting blue"], "one instance's lines alone");
  await page.click(".node-panel tr[data-instance='2'] button");
  await page.waitForSelector(".node-panel tr[data-instance='2'] button[aria-pressed=false]");
  t.equal((await visibleLines()).length, 3, "and all again");
  t.same(errors, []);
});
