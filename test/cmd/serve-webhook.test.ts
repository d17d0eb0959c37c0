/**
 * `floe serve` end to end: a signed GitHub, Gitea and GitLab push to a real host starts one
 * run each, and git-checkout checks out exactly the pushed commit (not the branch head);
 * bad signatures start nothing.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { git, makeRepo } from "../helpers/git.js";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";
import { github, githubPush, gitea, giteaPush, gitlab, gitlabPush, SECRET } from "../triggers/payloads.js";

t.test("a signed push runs a checkout of exactly the pushed commit", async (t) => {
  const dir = t.testdir({});
  const repo = makeRepo(dir, { "version.txt": "1\n" });
  const first = git(repo.work, "rev-parse", "HEAD");
  writeFileSync(join(repo.work, "version.txt"), "2\n");
  git(repo.work, "commit", "-qam", "two");
  git(repo.work, "push", "-q", "origin", "main");
  const head = git(repo.work, "rev-parse", "HEAD");
  t.not(first, head);
  const conf = join(dir, "flows.yml");
  writeFileSync(
    conf,
    `
flows:
  - id: ci
    triggers:
      - name: push
        type: git-push
        opts: {secret: "${SECRET}", url: "${repo.url}", refs: "refs/heads/*"}
    tasks:
      - {name: checkout, type: git-checkout, listen: trigger.good}
      - {name: show, type: exec, listen: task.checkout.good, opts: {shell: 'cat repo/version.txt; git -C repo rev-parse HEAD'}}
      - {name: fin, type: end, listen: task.show.good}
`,
  );
  const f = await startFloe({ conf, root: join(dir, "root") });
  t.teardown(() => f.kill9());
  const post = async (d: { headers: Record<string, string | string[] | undefined>; rawBody: Buffer }) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(d.headers)) if (typeof v === "string") headers[k] = v;
    const res = await fetch(`${f.api}/hooks/ci/push`, { method: "POST", headers, body: d.rawBody });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const pushes = [
    github("push", githubPush({ after: first, ref: "refs/heads/main" })),
    gitea(giteaPush({ after: first, ref: "refs/heads/main" })),
    gitlab("Push Hook", gitlabPush({ after: first, checkout_sha: first, ref: "refs/heads/main" })),
  ];
  for (const p of pushes) {
    const r = await post(p);
    t.equal(r.status, 201, JSON.stringify(r.body));
    const run = ((r.body["run"] as Record<string, unknown>)["ref"] as { run: string }).run;
    await until(async () => ((await f.req("GET", `/runs/${run}`)).body as { state: string }).state === "archived", 30_000, "the run to end");
    const detail = (await f.req("GET", `/runs/${run}`)).body as { result: string; trigger: { values: Record<string, unknown> } };
    t.equal(detail.result, "good");
    t.equal(detail.trigger.values["hash"], first);
    const out = ((await f.req("GET", `/runs/${run}/nodes/show/log`)).body as { lines: { text: string; stream: string }[] }).lines.filter((l) => l.stream === "out").map((l) => l.text);
    t.same(out, ["1", first], "the pushed commit, not the branch head");
  }
  const before = ((await f.req("GET", "/runs")).body as { runs: unknown[] }).runs.length;
  const bad = github("push", githubPush({ after: first }), { secret: "wrong" });
  t.equal((await post(bad)).status, 401);
  const tampered = github("push", githubPush({ after: first }));
  t.equal((await post({ headers: tampered.headers, rawBody: Buffer.from(tampered.rawBody.toString().replace("main", "evil")) })).status, 401);
  const unsigned = github("push", githubPush({ after: first }), { sign: false });
  t.equal((await post(unsigned)).status, 401);
  t.equal((await post(github("ping", { zen: "Keep it logically awesome.", hook_id: 1 }))).status, 200);
  t.equal(((await f.req("GET", "/runs")).body as { runs: unknown[] }).runs.length, before, "no run from a bad, tampered, unsigned or ping delivery");
  t.notMatch(f.output(), new RegExp(SECRET.replace(/[.*+?^${}()|[\]\\']/g, "\\$&")), "the secret never reaches the log");
});
