/**
 * The `git-checkout` node type (reference §2), with floe's gaps closed:
 * - `hash` (the pushed commit from a poll-git or git-push trigger) is checked out exactly,
 *   not the branch head of whenever the task happens to run (§9.20);
 * - `branch` is optional: without it the remote's default branch is cloned;
 * - the flow env reaches git (floe dropped it), and git never prompts for a password.
 *
 * Where the clone lands: `workspace/<sub-dir>/<name>`, where `<name>` is what `git clone`
 * picks by default — the URL's last component without `.git` (`…/floe.git` → `floe`).
 */
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { TaskResult, TaskRunner } from "./contract.js";
import type { GitTask } from "./git-common.js";
import { git, gitFailed, gitTask, logHead, refOpt, refreshClone } from "./git-common.js";
import { stringOpt } from "./task-util.js";
import { errorMessage } from "../flows/errors.js";

const TYPE = "git-checkout";
/** A full object id (sha1 or sha256): only these can be fetched by id. */
const FULL_HASH = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

export const runGitCheckout: TaskRunner = async (req) => {
  const g = await gitTask(req, TYPE);
  if ("error" in g) return { status: 1, error: g.error, outputs: {} };
  const branch = refOpt(req, "branch", TYPE);
  if (typeof branch === "object") return { status: 1, error: branch.error, outputs: {} };
  const rawHash = stringOpt(req.opts, "hash", TYPE);
  if (typeof rawHash === "object") return { status: 1, error: rawHash.error, outputs: {} };
  const hash = rawHash?.trim().toLowerCase();
  if (hash !== undefined && !/^[0-9a-f]{4,64}$/.test(hash)) {
    return { status: 1, error: `${TYPE} opts.hash ${JSON.stringify(rawHash)} is not a commit id`, outputs: {} };
  }
  try {
    await mkdir(path.dirname(g.dest), { recursive: true, mode: 0o700 });
  } catch (e: unknown) {
    return { status: 1, error: `${TYPE}: cannot create ${path.dirname(g.dest)}: ${errorMessage(e)}`, outputs: {} };
  }

  const done = g.existing ? await updateClone(g, hash, branch) : hash === undefined ? await cloneBranch(g, branch) : await checkoutCommit(g, hash, branch);
  return done ?? (await logHead(g)) ?? { status: 0, outputs: {} };
};

/** A shallow clone of `branch`, or of the remote's default branch. */
async function cloneBranch(g: GitTask, branch: string | undefined): Promise<TaskResult | undefined> {
  const args = ["clone", "--depth", "1", ...(branch === undefined ? [] : ["--branch", branch]), "--", g.url, g.dest];
  const r = await git(g, path.dirname(g.dest), args);
  return r.stopped ?? (r.status !== 0 ? gitFailed(g, "git clone", r.status) : undefined);
}

/**
 * Exactly commit `hash`. First the cheap way — an empty repository fetching only that
 * commit, one level deep — which needs a server that allows fetching by id (protocol v2
 * servers do; `uploadpack.allowReachableSHA1InWant` for v0). When refused, or when the id
 * is abbreviated, a full clone and a checkout of the commit.
 */
async function checkoutCommit(g: GitTask, hash: string, branch: string | undefined): Promise<TaskResult | undefined> {
  const parent = path.dirname(g.dest);
  if (FULL_HASH.test(hash)) {
    // init.defaultBranch only silences git's "using master" hint; the branch stays unborn.
    const init = await git(g, parent, ["-c", "init.defaultBranch=floe", "init", "-q", g.dest]);
    if (init.stopped) return init.stopped;
    if (init.status !== 0) return gitFailed(g, "git init", init.status);
    const remote = await git(g, g.dest, ["remote", "add", "origin", g.url]);
    if (remote.stopped) return remote.stopped;
    if (remote.status !== 0) return gitFailed(g, "git remote add", remote.status);
    const fetched = await git(g, g.dest, ["fetch", "--depth", "1", "origin", hash]);
    if (fetched.stopped) return fetched.stopped;
    if (fetched.status === 0) return checkout(g, hash, branch);
    g.sys("the server would not send the commit by id; cloning the whole repository instead");
    await rm(g.dest, { recursive: true, force: true });
  }
  const clone = await git(g, parent, ["clone", "--no-checkout", "--", g.url, g.dest]);
  if (clone.stopped) return clone.stopped;
  if (clone.status !== 0) return gitFailed(g, "git clone", clone.status);
  return checkout(g, hash, branch);
}

/** A clone left by an earlier run in a reused workspace: fetched and checked out afresh. */
async function updateClone(g: GitTask, hash: string | undefined, branch: string | undefined): Promise<TaskResult | undefined> {
  const refreshed = await refreshClone(g);
  if (refreshed) return refreshed;
  let target = hash;
  if (target === undefined) {
    const fetched = await git(g, g.dest, ["fetch", "--depth", "1", "origin", branch ?? "HEAD"]);
    if (fetched.stopped) return fetched.stopped;
    if (fetched.status !== 0) return gitFailed(g, "git fetch", fetched.status);
    target = "FETCH_HEAD";
  } else {
    const byId = FULL_HASH.test(hash ?? "") ? await git(g, g.dest, ["fetch", "--depth", "1", "origin", target]) : undefined;
    if (byId?.stopped) return byId.stopped;
    if (byId === undefined || byId.status !== 0) {
      const all = await git(g, g.dest, ["fetch", "--unshallow", "origin"]);
      if (all.stopped) return all.stopped;
      if (all.status !== 0) {
        const plain = await git(g, g.dest, ["fetch", "origin"]);
        if (plain.stopped) return plain.stopped;
        if (plain.status !== 0) return gitFailed(g, "git fetch", plain.status);
      }
    }
  }
  return checkout(g, target, branch);
}

/** Checks out `hash`, on a local `branch` when one is named (later tasks may commit and push), else detached. */
async function checkout(g: GitTask, hash: string, branch: string | undefined): Promise<TaskResult | undefined> {
  const target = branch === undefined ? ["--detach", hash] : ["-B", branch, hash];
  const r = await git(g, g.dest, ["-c", "advice.detachedHead=false", "checkout", "-f", "-q", ...target, "--"]);
  return r.stopped ?? (r.status !== 0 ? gitFailed(g, `git checkout ${hash}`, r.status) : undefined);
}
