/** The run page shows what a task wrote to $FLOE_OUTPUT, and the name later tasks find it under. */
import t from "tap";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage } from "../helpers/browser.js";

const CONF = `
flows:
  - id: outs
    triggers: [{name: go, type: data}]
    tasks:
      - name: build
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "version=1.2.3" >> "$FLOE_OUTPUT"'}
      - {name: fin, type: end, listen: task.build.good}
`;

t.test("a node's outputs on the run page", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, CONF, { dashboard: true });
  const run = await a.hub.trigger({ flow: "outs" });
  t.equal((await a.end(run.ref.run)).result, "good");
  const { page, errors } = await openPage(browser);
  await login(page, a.base, "viewer", "viewer-password", `/app/runs/${run.ref.run}`);
  await page.waitForSelector("g[data-node=build][data-state=good]");
  await page.click("g[data-node=build]");
  await page.waitForSelector(".node-panel [data-outputs] dt:text('version')");
  t.match(await page.textContent(".node-panel [data-outputs]"), /Outputs\s*version\s*1\.2\.3\s*\$FLOE_OUT_BUILD_VERSION/);
  t.same(errors, []);
});
