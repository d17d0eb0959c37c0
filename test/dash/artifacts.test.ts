/** The run page lists a node's artifacts with download links that fetch the bytes (with the session cookie). */
import t from "tap";
import { startApi } from "../helpers/api.js";
import { launch, login, openPage } from "../helpers/browser.js";

const CONF = `
flows:
  - id: arts
    triggers: [{name: go, type: data}]
    tasks:
      - name: build
        type: exec
        listen: trigger.good
        opts: {shell: 'printf "built bytes" > "$FLOE_ARTIFACTS/app v1.tar"'}
      - {name: fin, type: end, listen: task.build.good}
`;

t.test("a node's artifacts on the run page, downloadable", async (t) => {
  const browser = await launch(t);
  const a = await startApi(t, CONF, { dashboard: true });
  const run = await a.hub.trigger({ flow: "arts" });
  t.equal((await a.end(run.ref.run)).result, "good");
  const { page, errors } = await openPage(browser);
  await login(page, a.base, "viewer", "viewer-password", `/app/runs/${run.ref.run}`);
  await page.waitForSelector("g[data-node=build][data-state=good]");
  await page.click("g[data-node=build]");
  const link = await page.waitForSelector(".node-panel [data-artifacts] a[data-artifact='app v1.tar']");
  t.match(await page.textContent(".node-panel [data-artifacts]"), /Artifacts\s*app v1\.tar\s*11 bytes · sha256 [0-9a-f]{12}…/);
  const href = await link.getAttribute("href");
  t.equal(href, `/build/api/runs/${run.ref.run}/nodes/build/artifacts/app%20v1.tar`);
  // What the link fetches, as the browser would (its session cookie, no token).
  const body = await page.evaluate(async (u) => {
    const r = await fetch(u, { credentials: "same-origin" });
    return { status: r.status, text: await r.text() };
  }, href ?? "");
  t.same(body, { status: 200, text: "built bytes" });
  t.same(errors, []);
});
