import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import { cloneDirName } from "../../agent/git-common.js";
import { runGitCheckout } from "../../agent/git-checkout.js";
import { runGitMerge } from "../../agent/git-merge.js";
import { git, makeRepo } from "../helpers/git.js";
import { lines, request, workspace } from "./helpers.js";

/**
 * One bare repo for the file: main has two commits (`old`, `head`); `feature` branches from
 * `old` and adds feature.txt; `clash` branches from `old` and rewrites shared.txt, as main does.
 */
const dir = await mkdtemp(path.join(tmpdir(), "floe-git-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const repo = makeRepo(dir, { "shared.txt": "base\n", "README": "hello\n" });
const old = git(repo.work, "rev-parse", "HEAD");
git(repo.work, "checkout", "-qb", "feature");
writeFileSync(path.join(repo.work, "feature.txt"), "feature\n");
git(repo.work, "add", ".");
git(repo.work, "commit", "-qm", "feature");
git(repo.work, "checkout", "-q", "-b", "clash", old);
writeFileSync(path.join(repo.work, "shared.txt"), "clash side\n");
git(repo.work, "commit", "-qam", "clash");
git(repo.work, "checkout", "-q", "main");
writeFileSync(path.join(repo.work, "shared.txt"), "main side\n");
writeFileSync(path.join(repo.work, "main.txt"), "main\n");
git(repo.work, "add", ".");
git(repo.work, "commit", "-qm", "head");
const head = git(repo.work, "rev-parse", "HEAD");
git(repo.work, "push", "-q", "origin", "main", "feature", "clash");

t.test("cloneDirName is git clone's default directory", async (t) => {
  t.equal(cloneDirName("https://github.com/floeit/floe.git"), "floe");
  t.equal(cloneDirName("git@github.com:floeit/floe-test.git"), "floe-test");
  t.equal(cloneDirName("file:///tmp/x/repo.git/"), "repo");
  t.equal(cloneDirName("/srv/git/proj/.git"), "proj");
  t.equal(cloneDirName("host:"), undefined);
});

t.test("checkout: a branch, into sub-dir/<repo name>", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runGitCheckout(request(ws, { url: repo.url, branch: "feature", "sub-dir": "src" }, { type: "git-checkout", onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} });
  const clone = path.join(ws, "src", "repo");
  t.equal(readFileSync(path.join(clone, "feature.txt"), "utf8"), "feature\n");
  t.equal(git(clone, "rev-parse", "--abbrev-ref", "HEAD"), "feature");
  t.ok(l.texts("sys").some((s) => s.startsWith(`HEAD is now ${git(clone, "rev-parse", "HEAD")} (feature)`)), "HEAD logged");
});

t.test("checkout: no branch → the remote's default", async (t) => {
  const ws = await workspace(t);
  const r = await runGitCheckout(request(ws, { url: repo.url }, { type: "git-checkout" }));
  t.equal(r.status, 0);
  t.equal(git(path.join(ws, "repo"), "rev-parse", "HEAD"), head);
  t.equal(git(path.join(ws, "repo"), "rev-parse", "--abbrev-ref", "HEAD"), "main");
});

t.test("checkout: hash pins an older commit, fetched by id", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runGitCheckout(request(ws, { url: repo.url, branch: "main", hash: old }, { type: "git-checkout", onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} });
  const clone = path.join(ws, "repo");
  t.equal(git(clone, "rev-parse", "HEAD"), old);
  t.equal(git(clone, "rev-parse", "--abbrev-ref", "HEAD"), "main", "on a local branch named as the trigger's");
  t.notOk(existsSync(path.join(clone, "main.txt")), "files of the newer commit are absent");
  t.notOk(l.texts("sys").some((s) => s.includes("whole repository")), "no fallback needed");
});

t.test("checkout: a server refusing fetch-by-id falls back to a full clone; the flow env reaches git", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  // Protocol v0 without allowReachableSHA1InWant refuses an unadvertised commit.
  const env = ["GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=protocol.version", "GIT_CONFIG_VALUE_0=0"];
  const r = await runGitCheckout(request(ws, { url: repo.url, hash: old }, { type: "git-checkout", env, onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} });
  t.ok(l.texts("sys").some((s) => s.includes("cloning the whole repository")), "fell back");
  t.equal(git(path.join(ws, "repo"), "rev-parse", "HEAD"), old);
  t.ok(l.texts("sys").some((s) => s.startsWith(`HEAD is now ${old} (detached)`)));
});

t.test("checkout: a key-file sets ssh up without logging where the key is", async (t) => {
  const ws = await workspace(t);
  const key = path.join(dir, "deploy-key-secret-name");
  writeFileSync(key, "not really a key\n", { mode: 0o600 });
  const l = lines();
  const r = await runGitCheckout(request(ws, { url: repo.url, "key-file": key }, { type: "git-checkout", onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} }, "file:// does not use ssh; the clone still works");
  t.notOk(l.all.some((x) => x.text.includes("deploy-key-secret-name")), "key path not in the log");
});

t.test("checkout: ssh gets -i <key-file>, quoted; the flow env's PATH is honoured", async (t) => {
  const ws = await workspace(t);
  const bin = path.join(dir, "fake bin");
  mkdirSync(bin, { recursive: true });
  const record = path.join(dir, "ssh-args");
  // A stand-in ssh that records how it was called and fails as an unreachable host would.
  writeFileSync(path.join(bin, "ssh"), `#!/bin/sh\nprintf '%s\\n' "$@" > '${record}'\nexit 255\n`, { mode: 0o755 });
  const key = path.join(dir, "my key");
  writeFileSync(key, "k\n", { mode: 0o600 });
  const r = await runGitCheckout(request(ws, { url: "ssh://git@example.invalid/x.git", "key-file": key }, { type: "git-checkout", env: [`PATH=${bin}:$PATH`] }));
  t.not(r.status, 0);
  const args = readFileSync(record, "utf8").split("\n");
  t.same(args.slice(0, 6), ["-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=accept-new"]);
});

t.test("checkout: an abbreviated hash needs the full clone", async (t) => {
  const ws = await workspace(t);
  const r = await runGitCheckout(request(ws, { url: repo.url, hash: old.slice(0, 10) }, { type: "git-checkout" }));
  t.equal(r.status, 0);
  t.equal(git(path.join(ws, "repo"), "rev-parse", "HEAD"), old);
});

t.test("checkout: bad options are errors; a failing clone is bad", async (t) => {
  const ws = await workspace(t);
  const req = (opts: Record<string, unknown>) => request(ws, opts, { type: "git-checkout" });
  t.same(await runGitCheckout(req({ branch: "main" })), { status: 1, error: "git-checkout needs opts url", outputs: {} });
  t.match((await runGitCheckout(req({ url: repo.url, hash: "zz" }))).error, /not a commit id/);
  t.match((await runGitCheckout(req({ url: repo.url, branch: "--upload-pack=x" }))).error, /not a valid branch name/);
  t.match((await runGitCheckout(req({ url: repo.url, "sub-dir": "../out" }))).error, /outside the workspace/);
  t.match((await runGitCheckout(req({ url: repo.url, "key-file": "/nonexistent/key" }))).error, /key-file is not a readable file/);
  const l = lines();
  const bad = await runGitCheckout(request(ws, { url: `file://${dir}/missing.git` }, { type: "git-checkout", onLine: l.onLine }));
  t.equal(bad.error, undefined);
  t.not(bad.status, 0);
  t.match(bad.reason, /git clone failed/);
  t.ok(l.texts("err").some((s) => /does not appear to be a git repository|not found/i.test(s)), "git's message is in the log");
  const l2 = lines();
  const noBranch = await runGitCheckout(request(ws, { url: repo.url, branch: "nope", "sub-dir": "b" }, { type: "git-checkout", onLine: l2.onLine }));
  t.not(noBranch.status, 0);
});

t.test("checkout: a clone left by an earlier run (reuse-space) is updated, not refused", async (t) => {
  const ws = await workspace(t);
  const clone = path.join(ws, "repo");
  t.equal((await runGitCheckout(request(ws, { url: repo.url, branch: "feature" }, { type: "git-checkout" }))).status, 0);
  writeFileSync(path.join(clone, "README"), "edited by the last run\n");
  mkdirSync(path.join(clone, "cache"));
  writeFileSync(path.join(clone, "cache", "kept"), "build cache\n");
  const l = lines();
  const again = await runGitCheckout(request(ws, { url: repo.url, branch: "main" }, { type: "git-checkout", onLine: l.onLine }));
  t.same(again, { status: 0, outputs: {} });
  t.equal(git(clone, "rev-parse", "HEAD"), head, "now at main's head");
  t.equal(git(clone, "rev-parse", "--abbrev-ref", "HEAD"), "main");
  t.equal(readFileSync(path.join(clone, "README"), "utf8"), "hello\n", "local edits to tracked files are gone");
  t.ok(existsSync(path.join(clone, "cache", "kept")), "untracked caches stay");
  t.ok(l.texts("sys").some((s) => s.includes("holds a clone from an earlier run")));
  const pinned = await runGitCheckout(request(ws, { url: repo.url, branch: "main", hash: old }, { type: "git-checkout" }));
  t.same(pinned, { status: 0, outputs: {} });
  t.equal(git(clone, "rev-parse", "HEAD"), old, "a pinned hash in an existing clone");
  const abbreviated = await runGitCheckout(request(ws, { url: repo.url, hash: head.slice(0, 10) }, { type: "git-checkout" }));
  t.equal(abbreviated.status, 0);
  t.equal(git(clone, "rev-parse", "HEAD"), head, "an abbreviated hash in an existing shallow clone");
});

t.test("checkout: a non-empty directory that is not a clone is an error", async (t) => {
  const ws = await workspace(t);
  mkdirSync(path.join(ws, "repo"));
  writeFileSync(path.join(ws, "repo", "x"), "x");
  t.match((await runGitCheckout(request(ws, { url: repo.url }, { type: "git-checkout" }))).error, /already exists, is not empty and is not a git clone/);
});

t.test("checkout: an aborted signal stops it with the reason", async (t) => {
  const ws = await workspace(t);
  const ac = new AbortController();
  ac.abort(new Error("cancelled by alice"));
  const r = await runGitCheckout(request(ws, { url: repo.url }, { type: "git-checkout", signal: ac.signal }));
  t.same(r, { status: -1, reason: "cancelled by alice", outputs: {} });
});

t.test("merge: clean merge has both sides and a merge commit, nothing pushed", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runGitMerge(request(ws, { url: repo.url, branch: "main", "from-branch": "feature" }, { type: "git-merge", onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} });
  const clone = path.join(ws, "repo");
  t.equal(readFileSync(path.join(clone, "feature.txt"), "utf8"), "feature\n");
  t.equal(readFileSync(path.join(clone, "main.txt"), "utf8"), "main\n");
  t.equal(git(clone, "rev-list", "--parents", "-n", "1", "HEAD").split(" ").length, 3, "HEAD is a merge commit");
  t.equal(git(clone, "log", "-1", "--format=%an <%ae>"), "floe <floe@localhost>");
  t.equal(git(repo.bare, "rev-parse", "main"), head, "the remote is untouched");
  t.ok(l.texts("sys").some((s) => s.startsWith("HEAD is now ") && s.includes("(main)")));
});

t.test("merge: a conflict is bad, names the files, and is aborted", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runGitMerge(request(ws, { url: repo.url, branch: "main", "from-branch": "clash" }, { type: "git-merge", onLine: l.onLine }));
  t.not(r.status, 0);
  t.equal(r.reason, "merge conflict");
  t.equal(r.error, undefined);
  t.ok(l.texts("sys").some((s) => s.trim() === "shared.txt"), "conflicting file listed");
  const clone = path.join(ws, "repo");
  t.equal(git(clone, "status", "--porcelain"), "", "merge aborted: clean tree");
  t.equal(git(clone, "rev-parse", "HEAD"), head);
});

t.test("merge: in a clone left by an earlier run, merges onto the remote's branch afresh", async (t) => {
  const ws = await workspace(t);
  t.same(await runGitMerge(request(ws, { url: repo.url, branch: "main", "from-branch": "feature" }, { type: "git-merge" })), { status: 0, outputs: {} });
  const clone = path.join(ws, "repo");
  const again = await runGitMerge(request(ws, { url: repo.url, branch: "main", "from-branch": "feature" }, { type: "git-merge" }));
  t.same(again, { status: 0, outputs: {} });
  t.equal(git(clone, "rev-list", "--parents", "-n", "1", "HEAD").split(" ")[1], head, "the merge sits on the remote's main, not on the last run's merge");
  t.ok(existsSync(path.join(clone, "feature.txt")));
});

t.test("merge: missing options", async (t) => {
  const ws = await workspace(t);
  const need = { status: 1, error: "git-merge needs opts url, branch and from-branch", outputs: {} };
  t.same(await runGitMerge(request(ws, { url: repo.url, branch: "main" }, { type: "git-merge" })), need);
  t.same(await runGitMerge(request(ws, { branch: "main", "from-branch": "feature" }, { type: "git-merge" })), need);
  t.same(await runGitMerge(request(ws, { url: repo.url, "from-branch": "feature" }, { type: "git-merge" })), need);
  const r = await runGitMerge(request(ws, { url: repo.url, branch: "main", "from-branch": "nope" }, { type: "git-merge" }));
  t.match(r.reason, /git fetch nope failed/);
});
