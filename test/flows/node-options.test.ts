/**
 * `floe validate` looks inside opts: an option no node of that type reads is a warning with
 * a "did you mean" at its key; a value of the wrong shape is an error at the value. floe's
 * own option names (reference §2) stay accepted, including trigger options passed on to tasks.
 */
import { spawnSync } from "node:child_process";
import t from "tap";
import { formatDiagnostic } from "../../flows/diagnostics.js";
import { parseConfig } from "../../flows/parse.js";
import { floeBin } from "../helpers/paths.js";

const TYPOS = `flows:
  - id: f
    triggers:
      - name: start
        type: data
        opts:
          from: {fields: [{id: a}]}
      - name: tick
        type: timer
        opts: {period: 60, url: "git@h:a/b.git", branch: main}
    tasks:
      - name: build
        type: exec
        listen: trigger.good
        opts: {shel: "make", timout: 5s}
      - name: co
        type: git-checkout
        listen: task.build.good
        opts: {ur: "git@h:a/b.git"}
      - name: wrong
        type: exec
        listen: task.co.good
        opts: {shell: [1, 2], timeout: {}}
      - {name: done, type: end, listen: task.wrong.good}
`;

function lines(text: string): string[] {
  return parseConfig(text, "f.yml").diagnostics.map(formatDiagnostic);
}

t.test("unknown options are warnings with a did-you-mean, at their key", async (t) => {
  const got = lines(TYPOS);
  t.ok(got.includes(`f.yml:7:11: warning: unknown option "from" in opts of trigger "start" (data) (did you mean "form"?); it is ignored`), got.join("\n"));
  t.ok(got.includes(`f.yml:15:16: warning: unknown option "shel" in opts of task node "build" (exec) (did you mean "shell"?); it is ignored`), got.join("\n"));
  t.ok(got.includes(`f.yml:15:30: warning: unknown option "timout" in opts of task node "build" (exec) (did you mean "timeout"? it is a key of the node itself: put it beside opts, not in it); it is ignored`), got.join("\n"));
  t.ok(got.includes(`f.yml:19:16: warning: unknown option "ur" in opts of task node "co" (git-checkout) (did you mean "url"?); it is ignored`), got.join("\n"));
  t.notOk(got.some((l) => /"period"|"url" in opts of trigger "tick"|"branch"/.test(l)), "a timer's url and branch go to the run's tasks: known");
});

t.test("a value of the wrong shape is an error at the value", async (t) => {
  const res = parseConfig(TYPOS, "f.yml");
  t.equal(res.config, undefined, "the file is invalid");
  const got = res.diagnostics.map(formatDiagnostic);
  t.ok(got.includes(`f.yml:23:23: error: opts.shell of task node "wrong" must be text, not a list`), got.join("\n"));
  t.ok(got.includes(`f.yml:23:31: warning: unknown option "timeout" in opts of task node "wrong" (exec) ("timeout" is a key of the node itself: put it beside opts, not in it); it is ignored`), got.join("\n"));
});

t.test("floe validate prints them as FILE:LINE:COL", async (t) => {
  const dir = t.testdir({ "f.yml": TYPOS });
  const r = spawnSync(process.execPath, [floeBin, "validate", "f.yml"], { cwd: dir, encoding: "utf8" });
  t.equal(r.status, 1);
  t.match(r.stdout, /^f\.yml:15:16: warning: unknown option "shel"/m);
  t.match(r.stdout, /^f\.yml:23:23: error: opts\.shell/m);
});

t.test("every option of every node type as floe and the agent spell them loads without a word", async (t) => {
  const ok = `flows:
  - id: all
    triggers:
      - {name: d, type: data, opts: {url: "git@h:a/b.git", Form: {title: T, fields: [{id: x}]}}}
      - {name: tm, type: timer, opts: {period: 300, url: "git@h:a/b.git", branch: master}}
      - {name: cr, type: cron, opts: {cron: "*/5 * * * *", tz: UTC}}
      - {name: pg, type: poll-git, opts: {period: 10, url: "git@h:a/b.git", refs: "refs/heads/*", exclude-refs: "refs/heads/master", exclude: "x"}}
      - {name: gp, type: git-push, opts: {url: "git@h:a/b.git", refs: ["refs/heads/*"], secret: s}}
      - {name: wh, type: webhook, opts: {secret: s}}
    tasks:
      - {name: co, type: git-checkout, listen: trigger.good, opts: {url: "git@h:a/b.git", branch: main, hash: abc, sub-dir: src, key-file: k, env: ["A=1"]}}
      - {name: gm, type: git-merge, listen: task.co.good, opts: {url: "git@h:a/b.git", branch: main, from-branch: dev, sub-dir: src}}
      - {name: fe, type: fetch, listen: task.gm.good, opts: {url: "https://x/y.tgz", checksum: "ab12", checksum-algo: sha256, location: "./y.tgz"}}
      - {name: ex, type: exec, listen: task.fe.good, opts: {cmd: "ls", args: ["-l", 1], sub-dir: src, env: ["B=2"]}}
      - {name: sh, type: exec, listen: task.ex.good, opts: {shell: "echo hi"}}
      - {name: ti, type: timer, listen: task.sh.good, opts: {duration: 1s}}
      - {name: da, type: data, listen: task.ti.good, opts: {form: {title: Ok, fields: [{id: ok}]}}}
      - {name: done, type: end, listen: task.da.good}
`;
  t.same(lines(ok).filter((l) => /option|opts\./.test(l)), []);
});
