/**
 * `git ls-remote` as a bounded operation: its own process group, killed whole on timeout or
 * stop, never a password prompt, and every failure returned as a reason rather than thrown
 * (floe crashed on the first failing ls-remote, reference §9.2). Spawned by the spawn helper
 * (agent/spawner.ts), like tasks: never forked from the host's main thread.
 */
import { tmpdir } from "node:os";
import type { LsRemoteOptions, LsRemoteResult } from "./contract.js";
import { spawnLogged } from "./spawner.js";
import { gitSshCommand } from "../flows/git-ssh.js";

/** `<hash>\t<ref>` lines → ref → hash; lines outside `refs/` (HEAD) are skipped, `^{}` stripped. */
export function parseLsRemote(lines: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    const m = /^([0-9a-f]{40}|[0-9a-f]{64})\s+(\S+)$/.exec(line.trim());
    if (m?.[1] === undefined || m[2] === undefined || !m[2].startsWith("refs/")) continue;
    const peeled = m[2].endsWith("^{}");
    const ref = peeled ? m[2].slice(0, -3) : m[2];
    // With --refs there are no peeled lines; if one comes anyway the ref's own hash wins.
    if (peeled && out.has(ref)) continue;
    out.set(ref, m[1]);
  }
  return out;
}

export async function lsRemote(o: LsRemoteOptions): Promise<LsRemoteResult> {
  // A URL starting with "-" would be read as an option (--upload-pack=…): refused outright.
  if (o.url.startsWith("-")) return { ok: false, error: `refusing the URL ${JSON.stringify(o.url)}: it looks like an option`, stopped: false };
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = AbortSignal.any([o.signal, timeout]);
  const out: string[] = [];
  const err: string[] = [];
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" };
  if (o.gitKey !== undefined) env["GIT_SSH_COMMAND"] = gitSshCommand(o.gitKey);
  const r = await spawnLogged({
    cmd: "git",
    args: ["ls-remote", "--refs", "--", o.url, ...o.patterns],
    cwd: tmpdir(),
    env,
    signal,
    killGraceMs: o.killGraceMs ?? 1000,
    onLine: (l) => {
      if (l.stream === "out") out.push(l.text);
      else if (l.text.trim() !== "" && err.length < 50) err.push(l.text.trim());
    },
  });
  if (r.status === 0) return { ok: true, refs: parseLsRemote(out) };
  if (o.signal.aborted) return { ok: false, error: "stopped", stopped: true };
  if (timeout.aborted) return { ok: false, error: `git ls-remote timed out after ${o.timeoutMs / 1000}s`, stopped: false };
  const reason = err.filter((l) => !l.startsWith("Please make sure")).slice(0, 3).join("; ") || r.error || r.reason || `exit status ${r.status}`;
  return { ok: false, error: reason.slice(0, 500), stopped: false };
}
