/**
 * The `git-merge` node type. floe's was a stub that printed a line and succeeded
 * (reference §2, §9.23); this one merges for real:
 * clone `branch` (full history: the merge base must be there), fetch `from-branch`, and
 * `git merge --no-edit origin/<from-branch>` in `workspace/<sub-dir>/<repo name>`.
 *
 * A conflict ends the task bad with reason "merge conflict", the conflicting files listed
 * in the log and the merge aborted, so the clone is left clean at `branch`.
 *
 * Nothing is pushed: the merge is there for later tasks to build and test, and a later
 * exec task pushes it (`git push origin HEAD:<branch>`) when the flow decides it is good.
 * The merge commit is made as `floe <floe@localhost>`; GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL and
 * GIT_COMMITTER_* in the flow env override that, as they override any git config.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { TaskResult, TaskRunner } from "./contract.js";
import { git, gitFailed, gitTask, logHead, refOpt, refreshClone } from "./git-common.js";
import { errorMessage } from "../flows/errors.js";

const TYPE = "git-merge";
const NEEDS = "git-merge needs opts url, branch and from-branch";

export const runGitMerge: TaskRunner = async (req) => {
  const fail = (error: string): TaskResult => ({ status: 1, error, outputs: {} });
  const branch = refOpt(req, "branch", TYPE);
  const from = refOpt(req, "from-branch", TYPE);
  if (req.opts["url"] === undefined || branch === undefined || from === undefined) return fail(NEEDS);
  if (typeof branch === "object") return fail(branch.error);
  if (typeof from === "object") return fail(from.error);
  const g = await gitTask(req, TYPE);
  if ("error" in g) return fail(g.error === `${TYPE} needs opts url` ? NEEDS : g.error);
  const parent = path.dirname(g.dest);
  try {
    await mkdir(parent, { recursive: true, mode: 0o700 });
  } catch (e: unknown) {
    return fail(`${TYPE}: cannot create ${parent}: ${errorMessage(e)}`);
  }

  if (g.existing) {
    const refreshed = await refreshClone(g);
    if (refreshed) return refreshed;
    const base = await git(g, g.dest, ["fetch", "origin", `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
    if (base.stopped) return base.stopped;
    if (base.status !== 0) return gitFailed(g, `git fetch ${branch}`, base.status);
    const co = await git(g, g.dest, ["checkout", "-f", "-q", "-B", branch, `origin/${branch}`, "--"]);
    if (co.stopped) return co.stopped;
    if (co.status !== 0) return gitFailed(g, `git checkout ${branch}`, co.status);
  } else {
    const clone = await git(g, parent, ["clone", "--branch", branch, "--", g.url, g.dest]);
    if (clone.stopped) return clone.stopped;
    if (clone.status !== 0) return gitFailed(g, "git clone", clone.status);
  }
  // Explicit, so the merge source is current even if the clone skipped it (single-branch config).
  const fetch = await git(g, g.dest, ["fetch", "origin", `+refs/heads/${from}:refs/remotes/origin/${from}`]);
  if (fetch.stopped) return fetch.stopped;
  if (fetch.status !== 0) return gitFailed(g, `git fetch ${from}`, fetch.status);

  const merge = await git(g, g.dest, ["-c", "user.name=floe", "-c", "user.email=floe@localhost", "merge", "--no-edit", `origin/${from}`]);
  if (merge.stopped) return merge.stopped;
  if (merge.status !== 0) {
    const unmerged = await git(g, g.dest, ["diff", "--name-only", "--diff-filter=U"], true);
    if (unmerged.stopped) return unmerged.stopped;
    if (unmerged.out.length === 0) return gitFailed(g, "git merge", merge.status);
    g.sys(`merge conflict merging ${from} into ${branch} in:`);
    for (const file of unmerged.out) g.sys(`  ${file}`);
    const abort = await git(g, g.dest, ["merge", "--abort"]);
    if (abort.stopped) return abort.stopped;
    return { status: merge.status, reason: "merge conflict", outputs: {} };
  }
  return (await logHead(g)) ?? { status: 0, outputs: {} };
};
