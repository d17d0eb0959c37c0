/**
 * `queue-strategy: debounce` in a cluster of three real hosts: a burst of ten signed pushes,
 * spread over the hosts within the window, makes exactly one run — the last push's, with its
 * commit — and the held triggers are visible as pending "debouncing until …" meanwhile.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster } from "../helpers/cluster.js";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";
import { github, githubPush, SECRET } from "../triggers/payloads.js";

interface Summary {
  ref: { run: string };
  state: string;
  result?: string;
  reason?: string;
  waiting?: string;
  startedAt?: number;
  trigger: { values: Record<string, unknown> };
}

t.test("a burst of 10 pushes to three hosts makes one run, with the last push's commit", async (t) => {
  const marker = join(t.testdirName, "ran");
  const c = await startCluster(t, {
    conf: `
flows:
  - id: deb
    queue-strategy: debounce
    debounce: 3s
    triggers:
      - {name: push, type: git-push, opts: {secret: "${SECRET}", url: "https://github.com/octo-org/hello-world.git", refs: "refs/heads/*"}}
    tasks:
      - {name: build, type: exec, listen: trigger.good, opts: {shell: 'echo "$hash" >> ${marker}'}}
`,
  });
  t.testdir({});
  const names = ["h1", "h2", "h3"];
  for (const n of names) await c.start({ name: n });
  await c.settle(names);
  const shas = Array.from({ length: 10 }, (_, i) => (i + 1).toString(16).padStart(2, "0").repeat(20));
  const runs: string[] = [];
  for (const [i, sha] of shas.entries()) {
    const host = c.host(names[i % 3] as string);
    const d = github("push", githubPush({ after: sha, head_commit: { id: sha, message: `push ${i}` } }));
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(d.headers)) if (typeof v === "string") headers[k] = v;
    const res = await fetch(`${host.api}/hooks/deb/push`, { method: "POST", headers, body: d.rawBody });
    const body = (await res.json()) as { run: Summary };
    t.equal(res.status, 201, `push ${i} accepted`);
    runs.push(body.run.ref.run);
  }
  const last = runs.at(-1) as string;
  // While its window runs, the newest trigger shows as pending with the reason, on any host.
  const held = (await c.host("h2").req("GET", `/runs/${last}`)).body as Summary;
  t.equal(held.state, "pending");
  t.match(held.waiting ?? "", /^debouncing until \d{4}-\d\d-\d\dT/, `held: ${held.waiting}`);

  const all = async (): Promise<Summary[]> => ((await c.host("h1").req("GET", "/runs?flow=deb&limit=100")).body as { runs: Summary[] }).runs;
  await until(async () => (await all()).filter((r) => r.state === "archived").length === 10, 60_000, "every trigger to be settled");
  const settled = await all();
  const good = settled.filter((r) => r.result === "good");
  t.equal(good.length, 1, "exactly one run");
  t.equal(good[0]?.ref.run, last, "the last push's");
  t.equal(good[0]?.trigger.values["hash"], shas.at(-1), "with its commit");
  const replaced = settled.filter((r) => r.result === "cancelled");
  t.equal(replaced.length, 9, "the other nine were replaced");
  t.ok(replaced.every((r) => /^replaced by a newer trigger/.test(r.reason ?? "") && r.startedAt === undefined), "none of them started");
  t.same(evidence(marker), [shas.at(-1)], "the task ran once, with the last commit");

  // A held trigger can be cancelled through another host than the one holding it.
  const d = github("push", githubPush({ after: "ab".repeat(20) }));
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.headers)) if (typeof v === "string") headers[k] = v;
  const res = await fetch(`${c.host("h1").api}/hooks/deb/push`, { method: "POST", headers, body: d.rawBody });
  const heldRun = ((await res.json()) as { run: Summary }).run.ref.run;
  const cancel = await c.host("h3").req("POST", `/runs/${heldRun}/cancel`);
  t.equal(cancel.status, 200, JSON.stringify(cancel.body));
  t.match(cancel.body, { run: { state: "archived", result: "cancelled" } });
  await until(async () => ((await c.host("h2").req("GET", `/runs/${heldRun}`)).body as Summary).state === "archived", 20_000, "the cancel seen everywhere");
  t.same(evidence(marker), [shas.at(-1)], "the cancelled trigger never ran");
});

t.test("a held trigger survives a restart of its host and runs once its window passes", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "floe-debounce-restart-"));
  const conf = join(dir, "flows.yml");
  const marker = join(dir, "ran");
  writeFileSync(
    conf,
    `
flows:
  - id: deb
    queue-strategy: debounce
    debounce: 10s
    triggers: [{name: go, type: data, opts: {form: {fields: [{id: n, prompt: n}]}}}]
    tasks:
      - {name: build, type: exec, listen: trigger.good, opts: {shell: 'echo "$n" >> ${marker}'}}
`,
  );
  let p = await startFloe({ conf, root: join(dir, "root") });
  t.teardown(() => p.kill9());
  const first = ((await p.req("POST", "/flows/deb/runs", { values: { n: "1" } })).body as { run: Summary }).run.ref.run;
  const second = ((await p.req("POST", "/flows/deb/runs", { values: { n: "2" } })).body as { run: Summary }).run.ref.run;
  const replaced = (await p.req("GET", `/runs/${first}`)).body as Summary;
  t.equal(replaced.result, "cancelled", "a newer trigger on the same host replaces the held one at once");
  t.equal(await p.stop(), 0);
  p = await startFloe({ conf, root: join(dir, "root") });
  const back = (await p.req("GET", `/runs/${second}`)).body as Summary;
  t.equal(back.state, "pending");
  t.match(back.waiting ?? "", /^debouncing until /, "still held after the restart");
  await until(async () => ((await p.req("GET", `/runs/${second}`)).body as Summary).state === "archived", 30_000, "the held trigger runs");
  t.equal(((await p.req("GET", `/runs/${second}`)).body as Summary).result, "good");
  t.same(evidence(marker), ["2"], "one run, with the newer values");
});
