/** poll-git against real local bare repositories: commits, branches and tags pushed from a work clone. */
import { hostCommands } from "../../agent/host-commands.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { lsRemote } from "../../agent/ls-remote.js";
import { TriggerManager } from "../../hub/triggers/manager.js";
import { GitPoller, type PollWatcher } from "../../hub/triggers/poll-git.js";
import { git, makeRepo } from "../helpers/git.js";
import { config, until } from "../helpers/hub.js";
import { captureLog, RecordingSink } from "./helpers.js";

function setup(t: Test, refs = ["refs/*"], watchers: Partial<PollWatcher>[] = [{}]) {
  const dir = tempDir(t);
  const repo = makeRepo(dir, { "README.md": "hello\n" });
  const root = join(dir, "root");
  const sink = new RecordingSink();
  const logs = captureLog();
  const make = (): GitPoller => {
    const p = new GitPoller({ lsRemote: hostCommands.lsRemote, url: repo.url, refs, periodMs: 1000, root, sink, log: logs.log, timeoutMs: 20_000 });
    for (const w of watchers) p.add({ flow: "build", ver: 1, trigger: "commits", exclude: [], ...w });
    t.teardown(() => p.stop());
    return p;
  };
  const commit = (branch: string, text: string): string => {
    git(repo.work, "checkout", "-q", "-B", branch);
    git(repo.work, "commit", "-q", "--allow-empty", "-m", text);
    git(repo.work, "push", "-q", "origin", branch);
    return git(repo.work, "rev-parse", "HEAD");
  };
  return { dir, repo, root, sink, logs, make, commit };
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), "floe-poll-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test("first poll baselines; each new commit, branch and tag starts exactly one run", async (t) => {
  const s = setup(t);
  const p = s.make();
  await p.pollOnce();
  t.equal(s.sink.calls.length, 0, "the first poll only records a baseline");
  const saved = JSON.parse(readFileSync(join(s.root, "triggers", "build", "commits.refs.json"), "utf8")) as { heads: Record<string, string> };
  t.equal(saved.heads["refs/heads/main"], git(s.repo.work, "rev-parse", "main"), "baseline persisted");
  await p.pollOnce();
  t.equal(s.sink.calls.length, 0, "nothing changed, nothing starts");

  const c1 = s.commit("main", "second");
  await p.pollOnce();
  t.same(s.sink.calls, [{ flow: "build", ver: 1, trigger: "commits", by: "poll-git", opts: { url: s.repo.url, branch: "main", hash: c1, ref: "refs/heads/main" } }]);

  const c2 = s.commit("feature/x", "on a branch");
  await p.pollOnce();
  t.equal(s.sink.calls.length, 2);
  t.same(s.sink.calls[1]?.opts, { url: s.repo.url, branch: "feature/x", hash: c2, ref: "refs/heads/feature/x" });

  git(s.repo.work, "tag", "-a", "v1.0", "-m", "release");
  git(s.repo.work, "push", "-q", "origin", "v1.0");
  await p.pollOnce();
  t.equal(s.sink.calls.length, 3);
  t.match(s.sink.calls[2]?.opts, { tag: "v1.0", ref: "refs/tags/v1.0", hash: git(s.repo.work, "rev-parse", "v1.0") });
  t.notOk("branch" in (s.sink.calls[2]?.opts ?? {}));

  await p.pollOnce();
  t.equal(s.sink.calls.length, 3, "no repeats");
});

t.test("the baseline survives a restart: a push while the host was down starts its run", async (t) => {
  const s = setup(t);
  const first = s.make();
  await first.pollOnce();
  await first.stop();
  const c = s.commit("main", "while down");
  const second = s.make();
  await second.pollOnce();
  t.equal(s.sink.calls.length, 1);
  t.match(s.sink.calls[0]?.opts, { branch: "main", hash: c });
});

t.test("exclude and floe's exclude-refs are honoured; refs patterns limit what is polled", async (t) => {
  const s = setup(t, ["refs/heads/*"], [{ exclude: [/refs\/heads\/main/] }]);
  const p = s.make();
  await p.pollOnce();
  s.commit("main", "excluded");
  await p.pollOnce();
  t.equal(s.sink.calls.length, 0, "main is excluded");
  s.commit("dev", "not excluded");
  git(s.repo.work, "tag", "t1");
  git(s.repo.work, "push", "-q", "origin", "t1");
  await p.pollOnce();
  t.equal(s.sink.calls.length, 1, "dev starts a run; the tag is outside refs/heads/*");
  t.match(s.sink.calls[0]?.opts, { branch: "dev" });
});

t.test("manager: exclude-refs from YAML, one poller per (url, refs), each flow its own run", async (t) => {
  const s = setup(t);
  const yaml = (flow: string, extra: string): string => `
  - id: ${flow}
    ver: 1
    triggers:
      - { name: commits, type: poll-git, opts: { url: "${s.repo.url}", refs: "refs/heads/*", period: 1${extra} } }
    tasks:
      - { name: build, type: exec, listen: trigger.good, opts: { cmd: "true" } }`;
  const cfg = config(`flows:${yaml("a", "")}${yaml("b", `, exclude-refs: "refs/heads/main"`)}`);
  const m = new TriggerManager({ commands: hostCommands, config: cfg, root: s.root, sink: s.sink, log: s.logs.log });
  t.teardown(() => m.stop());
  m.start();
  await m.ready();
  t.equal(m.status().pollers.length, 1, "two triggers on the same (url, refs) share one poller");
  t.same(m.status().pollers[0]?.watchers, ["a/1/commits", "b/1/commits"]);
  await until(() => s.logs.records.filter((r) => r.msg === "poll-git: baseline recorded").length === 2, 10_000, "baselines");
  const c = s.commit("main", "to main");
  await until(() => s.sink.calls.length >= 1, 10_000, "a run for flow a");
  s.commit("dev", "to dev");
  await until(() => s.sink.calls.length >= 3, 10_000, "runs for dev in both flows");
  t.same(s.sink.calls.map((x) => `${x.flow}:${String(x.opts?.["branch"])}`).sort(), ["a:dev", "a:main", "b:dev"], "b excludes main");
  t.match(s.sink.calls.find((x) => x.flow === "a" && x.opts?.["branch"] === "main")?.opts, { hash: c });
  await m.stop();
  await m.stop();
  t.equal(m.state, "stopped", "stop is idempotent");
});

t.test("an unreachable URL backs off, is reported, and never throws", async (t) => {
  const dir = tempDir(t);
  const logs = captureLog();
  const sink = new RecordingSink();
  const p = new GitPoller({ lsRemote: hostCommands.lsRemote, url: "file:///nonexistent.git", refs: ["refs/*"], periodMs: 1000, maxBackoffMs: 8000, root: dir, sink, log: logs.log });
  t.teardown(() => p.stop());
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    await p.pollOnce();
    delays.push(p.status().nextDelayMs);
  }
  t.same(delays, [2000, 4000, 8000, 8000, 8000], "period × 2^n, capped");
  t.equal(p.status().failures, 5);
  t.match(p.status().lastError, /does not appear to be a git repository/);
  const warns = logs.records.filter((r) => r.msg === "poll-git: git ls-remote failed; backing off");
  t.equal(warns.length, 5);
  t.match(warns[0], { level: 40, reason: /nonexistent/, failures: 1, retryInMs: 2000 });
  t.equal(sink.calls.length, 0);
});

t.test("a failing sink is logged; the baseline still moves on", async (t) => {
  const s = setup(t);
  const p = s.make();
  await p.pollOnce();
  s.sink.refuse = new Error("queue full");
  s.commit("main", "refused");
  await p.pollOnce();
  t.equal(s.sink.calls.length, 1);
  t.ok(s.logs.records.some((r) => r.msg === "poll-git: the run was refused"));
  s.sink.refuse = undefined;
  await p.pollOnce();
  t.equal(s.sink.calls.length, 1, "not retried forever (queue-limit decides, not the poller)");
});

t.test("a hanging remote times out, and stop() kills an ls-remote in flight", async (t) => {
  // A server that accepts and never answers: git waits for a ref advertisement that never comes.
  const sockets: Socket[] = [];
  let closed = 0;
  const server = createServer((sock) => {
    sockets.push(sock);
    sock.on("close", () => closed++);
    sock.on("error", () => undefined);
    sock.resume(); // read (and drop) git's request so the end of the connection is seen
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const url = `git://127.0.0.1:${port}/repo.git`;

  const start = Date.now();
  const res = await lsRemote({ url, patterns: [], timeoutMs: 500, signal: new AbortController().signal, killGraceMs: 200 });
  t.match(res, { ok: false, stopped: false, error: /timed out after 0.5s/ });
  t.ok(Date.now() - start < 5000, "bounded");

  const logs = captureLog();
  const p = new GitPoller({ lsRemote: hostCommands.lsRemote, url, refs: ["refs/*"], periodMs: 1000, root: tempDir(t), sink: new RecordingSink(), log: logs.log, timeoutMs: 60_000 });
  p.start();
  await until(() => sockets.length === 2, 10_000, "ls-remote connected");
  const before = closed;
  const t0 = Date.now();
  await p.stop();
  t.ok(Date.now() - t0 < 5000, "stop does not wait for the timeout");
  await until(() => closed > before, 5000, "the killed git closes its connection");
  t.notOk(logs.records.some((r) => r.msg === "poll-git: git ls-remote failed; backing off"), "a stop is not a failure");
  await p.stop();
});

t.test("URLs that look like options are refused", async (t) => {
  const res = await lsRemote({ url: "--upload-pack=touch /tmp/pwned", patterns: [], timeoutMs: 5000, signal: new AbortController().signal });
  t.match(res, { ok: false, error: /looks like an option/ });
});
