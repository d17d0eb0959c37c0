/**
 * One GIT_SSH_COMMAND for every git that uses a key: a key path with a space and a quote
 * reaches ssh as one argument from a git task, poll-git's ls-remote and a flow-file in git.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import { runGitCheckout } from "../../agent/git-checkout.js";
import { readFlowFile } from "../../flows/flow-file.js";
import { gitSshCommand } from "../../flows/git-ssh.js";
import { lsRemote } from "../../agent/ls-remote.js";
import { request, workspace } from "../agent/helpers.js";

const dir = mkdtempSync(path.join(tmpdir(), "floe-git-ssh-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const key = path.join(dir, "deploy key's $HOME `x`");
writeFileSync(key, "k\n", { mode: 0o600 });
// A stand-in ssh that records how it was called and fails as an unreachable host would.
const bin = path.join(dir, "fake bin");
mkdirSync(bin);
const record = path.join(dir, "ssh-args");
writeFileSync(path.join(bin, "ssh"), `#!/bin/sh\nprintf '%s\\n' "$@" > '${record}'\nexit 255\n`, { mode: 0o755 });
const PATH = `${bin}${path.delimiter}${process.env["PATH"] ?? ""}`;
const WANT = ["-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"];

function sshArgs(): string[] {
  const args = readFileSync(record, "utf8").split("\n");
  rmSync(record);
  return args.slice(0, WANT.length);
}

t.test("git itself hands the key path to ssh whole", async (t) => {
  t.throws(() => execFileSync("git", ["ls-remote", "ssh://git@example.invalid/x.git"], { env: { ...process.env, PATH, GIT_SSH_COMMAND: gitSshCommand(key) }, stdio: "ignore" }));
  t.same(sshArgs(), WANT);
});

t.test("a git task's key-file", async (t) => {
  const ws = await workspace(t);
  const r = await runGitCheckout(request(ws, { url: "ssh://git@example.invalid/x.git", "key-file": key }, { type: "git-checkout", env: [`PATH=${bin}:$PATH`] }));
  t.not(r.status, 0);
  t.same(sshArgs(), WANT);
});

t.test("poll-git's ls-remote and a flow-file in git, with common.git-key", async (t) => {
  // Both run git in the host's environment: the stand-in ssh goes first on its PATH.
  const before = process.env["PATH"];
  process.env["PATH"] = PATH;
  t.teardown(() => {
    process.env["PATH"] = before;
  });
  const r = await lsRemote({ url: "ssh://git@example.invalid/x.git", patterns: [], timeoutMs: 20_000, signal: new AbortController().signal, gitKey: key });
  t.equal(r.ok, false);
  t.same(sshArgs(), WANT, "ls-remote");
  await t.rejects(readFlowFile("ssh://git@example.invalid/x.git/FLOE.yml", { baseDir: dir, gitKey: key }), /can not read flow-file/);
  t.same(sshArgs(), WANT, "flow-file");
});
