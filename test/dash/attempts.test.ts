/**
 * The run page of a run requeued after its host was lost (kill -9 of the executing host of
 * a two-host cluster mid-task), in headless Chromium: a node's output is shown one run
 * attempt at a time, the latest by default, with a selector for the other; each attempt
 * shows its own lines only; the run says "run attempt 2" and the node its tries in it.
 * Screenshots of both attempts, at 1280×800, go to docs-screenshots/.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { testUsers } from "../helpers/api.js";
import { launch, login, openPage } from "../helpers/browser.js";
import { evidence, startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";
import { repoRoot } from "../helpers/paths.js";

const SHOTS = join(repoRoot, "docs-screenshots");

t.test("the run page of a requeued run shows attempt 1 and attempt 2 apart", async (t) => {
  const dir = t.testdir({});
  const ev = join(dir, "evidence.log");
  const operator = (await testUsers()).find((u) => u.name === "operator");
  // Each attempt prints lines naming its host and attempt, then waits for the release file.
  const long = `echo "long-start $FLOE_RUN_ID $HOST_NAME" >> ${ev}; for i in 48 49 50; do echo "epoch $i on $HOST_NAME (run attempt $FLOE_ATTEMPT)"; done; while [ ! -f ${dir}/release ]; do sleep 0.05; done; echo "finished on $HOST_NAME"`;
  const c = await startCluster(t, {
    conf: `
common:
  users:
    - {name: operator, role: operator, password-hash: "${operator?.passwordHash ?? ""}"}
flows:
  - id: train
    name: Training that survives a host loss
    triggers: [{name: go, type: data}]
    tasks:
      - {name: epochs, type: exec, listen: trigger.good, opts: {shell: '${long}'}}
      - {name: report, type: exec, listen: task.epochs.good, opts: {shell: 'echo report'}}
`,
  });
  await Promise.all([c.start({ name: "h1" }), c.start({ name: "h2" })]);
  await c.settle(["h1", "h2"]);
  const r = await c.host("h1").req("POST", "/flows/train/runs", {});
  t.equal(r.status, 201);
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(() => evidence(ev).some((l) => l.startsWith(`long-start ${run} `)), 30_000, "attempt 1 to start");
  const victim = evidence(ev).find((l) => l.startsWith(`long-start ${run} `))?.split(" ")[2] ?? "";
  const survivor = victim === "h1" ? "h2" : "h1";
  const lines = (host: string, attempt: number) => [48, 49, 50].map((i) => `epoch ${i} on ${host} (run attempt ${attempt})`);
  // Attempt 1's lines reach the cluster's history before its host dies.
  await until(async () => {
    const a = (await c.host(survivor).req("GET", `/runs/${run}/nodes/epochs/log`)).body as { lines?: { text: string }[] };
    return (a.lines ?? []).some((l) => l.text === lines(victim, 1)[2]);
  }, 20_000, "attempt 1's lines in the history");
  await c.kill9(victim);
  await until(() => evidence(ev).includes(`long-start ${run} ${survivor}`), 30_000, "attempt 2 to start on the survivor");

  const browser = await launch(t);
  const w = await openPage(browser, { width: 1280, height: 800 });
  const { page } = w;
  const base = c.host(survivor).url;
  // The node's panel (its tries, the attempt selector and the output) at the top of the window.
  const showPanel = () => page.evaluate("document.querySelector('.node-panel').scrollIntoView({ block: 'start' })");
  await login(page, base, "operator", "operator-password", `/app/runs/${run}?node=epochs`);
  await page.waitForSelector("main[data-ready]");
  await page.waitForSelector("[data-run-attempt='2']");
  t.match(await page.textContent("[data-run-attempt]"), /2 \(requeued after its host was lost\)/, "the run says run attempt 2");

  // The latest attempt by default, with a selector for both.
  await page.waitForSelector(".attempts button[data-attempt='2'][aria-pressed=true]");
  t.same(await page.locator(".attempts button").allTextContents(), ["attempt 1", "attempt 2"], "a selector: attempt 1, attempt 2");
  await page.waitForSelector(`.log[data-log=epochs][data-attempt='2'] .l:has-text('${lines(survivor, 2)[2]}')`);
  const two = await page.locator(".log[data-log=epochs] .l.s-out").allTextContents();
  t.same(two, lines(survivor, 2), "attempt 2: its own lines only");
  t.match(await page.textContent(".node-details"), /tries\s*1 in run attempt 2/, "the node's tries are counted in run attempt 2");
  mkdirSync(SHOTS, { recursive: true });
  await showPanel();
  await page.screenshot({ path: join(SHOTS, "run-attempt-2.png") });

  await page.click(".attempts button[data-attempt='1']");
  await page.waitForSelector(".attempts button[data-attempt='1'][aria-pressed=true]");
  await page.waitForSelector(`.log[data-log=epochs][data-attempt='1'] .l:has-text('${lines(victim, 1)[2]}')`);
  const one = await page.locator(".log[data-log=epochs] .l.s-out").allTextContents();
  t.same(one, lines(victim, 1), "attempt 1: its own lines only, none of attempt 2");
  await page.waitForSelector(".log-status:has-text('end of output')");
  t.match(await page.textContent("[data-attempt-note]"), /run attempt 1, which ended when its host was lost/, "says which attempt the output is of");
  await showPanel();
  await page.screenshot({ path: join(SHOTS, "run-attempt-1.png") });

  // Back to the latest, which goes on live.
  await page.click(".attempts button[data-attempt='2']");
  await page.waitForSelector(`.log[data-log=epochs][data-attempt='2'] .l:has-text('${lines(survivor, 2)[2]}')`);
  writeFileSync(join(dir, "release"), "");
  await page.waitForSelector(`.log[data-log=epochs] .l:has-text('finished on ${survivor}')`);
  await page.waitForSelector("h1 .badge[data-result=good]");
  t.same((await page.locator(".log[data-log=epochs] .l.s-out").allTextContents()).filter((l) => l.includes(`on ${victim}`)), [], "attempt 2's view never shows attempt 1's lines");
  t.same(w.errors, [], "no script errors");
  t.same(w.external, [], "nothing fetched from outside the host");
});
