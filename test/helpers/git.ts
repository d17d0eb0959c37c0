/** Local git repositories for tests. */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-C", dir, "-c", "user.name=floe-test", "-c", "user.email=t@floe", "-c", "init.defaultBranch=main", ...args], { encoding: "utf8" }).trim();
}

/** A bare repo with `files` committed on main; returns its file:// URL and a work clone. */
export function makeRepo(dir: string, files: Record<string, string>): { url: string; bare: string; work: string } {
  const work = join(dir, "work");
  const bare = join(dir, "repo.git");
  mkdirSync(work, { recursive: true });
  git(work, "init", "-q", "-b", "main");
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(work, name)), { recursive: true });
    writeFileSync(join(work, name), text);
  }
  git(work, "add", ".");
  git(work, "commit", "-qm", "initial");
  execFileSync("git", ["clone", "-q", "--bare", work, bare]);
  git(work, "remote", "add", "origin", bare);
  return { url: `file://${bare}`, bare, work };
}
