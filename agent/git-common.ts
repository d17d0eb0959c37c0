/**
 * What git-checkout and git-merge share: reading their options, the environment git runs
 * in, and running one git command as part of a task.
 */
import { access, constants, readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { TaskRequest, TaskResult } from "./contract.js";
import { spawnLogged } from "./spawner.js";
import { insideWorkspace, stringOpt, sysWriter, taskEnv } from "./task-util.js";
import { errorCode } from "../flows/errors.js";
import { gitSshCommand } from "../flows/git-ssh.js";
import { redactUrl } from "../store/redact-url.js";

export interface GitTask {
  readonly req: TaskRequest;
  readonly sys: (text: string) => void;
  readonly url: string;
  /** Where the repository is cloned: `workspace/sub-dir/<repo name>`. */
  readonly dest: string;
  /** `dest` already holds a clone (a reused workspace): it is updated, not cloned again. */
  readonly existing: boolean;
  readonly env: NodeJS.ProcessEnv;
}

export interface GitRun {
  /** The finished task when git could not run or was stopped; undefined when it ran to an exit status. */
  readonly stopped?: TaskResult;
  readonly status: number;
  /** stdout lines, when captured. */
  readonly out: readonly string[];
}

/**
 * The directory `git clone <url>` picks by default: the last path component, without a
 * trailing `/`, `/.git` or `.git` (`https://h/a/floe.git` → `floe`, `git@h:a/b` → `b`).
 */
export function cloneDirName(url: string): string | undefined {
  let s = url.replace(/\/+$/, "");
  if (s.endsWith("/.git")) s = s.slice(0, -5);
  s = s.replace(/\/+$/, "");
  if (s.endsWith(".git")) s = s.slice(0, -4);
  const name = s.slice(Math.max(s.lastIndexOf("/"), s.lastIndexOf(":")) + 1);
  return name === "" || name === "." || name === ".." ? undefined : name;
}

/**
 * A branch (or ref) name from the opts. A leading `-` would read as a git option and
 * whitespace or control characters are never valid in a ref, so both are refused up front.
 */
export function refOpt(req: TaskRequest, key: string, type: string): string | undefined | { error: string } {
  const v = stringOpt(req.opts, key, type);
  if (v === undefined || typeof v !== "string") return v;
  if (v.startsWith("-") || /[\s\x00-\x1f\x7f~^:?*[\\]/.test(v)) return { error: `${type} opts.${key} ${JSON.stringify(v)} is not a valid branch name` };
  return v;
}

/** Reads url, sub-dir and key-file; the error text when the task cannot start. */
export async function gitTask(req: TaskRequest, type: string): Promise<GitTask | { error: string }> {
  const url = stringOpt(req.opts, "url", type);
  if (url === undefined) return { error: `${type} needs opts url` };
  if (typeof url !== "string") return url;
  if (url.startsWith("-") || /[\x00-\x1f\x7f]/.test(url)) return { error: `${type} opts.url is not a repository URL` };
  const name = cloneDirName(url);
  if (name === undefined) return { error: `${type} cannot tell the repository name from opts.url` };
  const sub = stringOpt(req.opts, "sub-dir", type);
  if (typeof sub === "object") return sub;
  const dir = insideWorkspace(req.workspace, sub, `${type} opts.sub-dir`);
  if ("error" in dir) return dir;
  const dest = path.join(dir.path, name);
  const existing = !(await isEmptyOrMissing(dest));
  if (existing && !(await isDir(path.join(dest, ".git")))) return { error: `${type}: ${dest} already exists, is not empty and is not a git clone` };

  const env = taskEnv(req);
  // Never ask for a password: a task has no terminal and would hang until its timeout.
  env["GIT_TERMINAL_PROMPT"] = "0";
  const key = stringOpt(req.opts, "key-file", type);
  if (typeof key === "object") return key;
  if (key !== undefined) {
    const keyPath = path.resolve(req.workspace, key);
    try {
      await access(keyPath, constants.R_OK);
    } catch {
      // The path is not echoed: it names a secret's location on this host.
      return { error: `${type} opts.key-file is not a readable file` };
    }
    env["GIT_SSH_COMMAND"] = gitSshCommand(keyPath);
  }
  return { req, sys: sysWriter(req), url, dest, existing, env };
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Points an existing clone at `url` (it may have changed in the flow) and throws away
 * local changes to tracked files; untracked build caches stay, which is why one reuses a
 * workspace.
 */
export async function refreshClone(g: GitTask): Promise<TaskResult | undefined> {
  g.sys(`${g.dest} holds a clone from an earlier run; updating it`);
  const remote = await git(g, g.dest, ["remote", "set-url", "origin", g.url]);
  if (remote.stopped) return remote.stopped;
  if (remote.status !== 0) return gitFailed(g, "git remote set-url", remote.status);
  const merge = await git(g, g.dest, ["merge", "--abort"], true);
  if (merge.stopped) return merge.stopped;
  return undefined;
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e: unknown) {
    return errorCode(e) === "ENOENT";
  }
}

/**
 * Runs `git <args>` in `cwd`, its output going to the task log (stdout kept instead when
 * `capture`). The command is echoed as a sys line with credentials in URLs hidden.
 */
export async function git(g: GitTask, cwd: string, args: readonly string[], capture = false): Promise<GitRun> {
  if (!capture) g.sys(["git", ...args.map(redactUrl)].join(" "));
  const out: string[] = [];
  const r = await spawnLogged({
    cmd: "git",
    args,
    cwd,
    env: g.env,
    signal: g.req.signal,
    onLine: capture ? (l) => (l.stream === "out" ? out.push(l.text) : g.req.onLine(l)) : g.req.onLine,
    ...(g.req.onStart ? { onStart: g.req.onStart } : {}),
  });
  if (r.error !== undefined) return { status: r.status, out, stopped: { status: r.status, error: r.error, outputs: {} } };
  if (r.reason !== undefined) {
    g.sys(`killed: ${r.reason}`);
    return { status: r.status, out, stopped: { status: r.status, reason: r.reason, outputs: {} } };
  }
  return { status: r.status, out };
}

/** A failed git step as the task's result. */
export function gitFailed(g: GitTask, what: string, status: number): TaskResult {
  const reason = `${what} failed with status ${status}`;
  g.sys(reason);
  return { status, reason, outputs: {} };
}

/** Logs the commit now checked out, e.g. "HEAD is now 3f2a… (main)". */
export async function logHead(g: GitTask): Promise<TaskResult | undefined> {
  const r = await git(g, g.dest, ["rev-parse", "HEAD"], true);
  if (r.stopped) return r.stopped;
  const head = r.out[0];
  if (r.status !== 0 || head === undefined) return gitFailed(g, "git rev-parse HEAD", r.status);
  const b = await git(g, g.dest, ["symbolic-ref", "-q", "--short", "HEAD"], true);
  if (b.stopped) return b.stopped;
  g.sys(`HEAD is now ${head} (${b.status === 0 && b.out[0] ? b.out[0] : "detached"}) in ${g.dest}`);
  return undefined;
}
