/**
 * README, "Where git-checkout clones, and which commit": the YAML example marked
 * git-checkout, run with `floe run` against a local repository named app.git (its URL
 * replaces the example's). The form's `branch` field picks the branch a git-checkout
 * without its own `branch` clones, into `<sub-dir>/<repo name>` (src/app); the trigger's
 * `url` option reaches the task. Without --set, the field's default (main) is cloned.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { git } from "../helpers/git.js";
import { floeBin } from "../helpers/paths.js";
import { missingPrograms, readmeBlock } from "./readme.js";

const EXAMPLE_URL = "https://git.example.com/org/app.git";

t.test("a form field named branch steers git-checkout, which clones into sub-dir/<repo name>", { skip: missingPrograms(["git"]).length > 0 ? "needs git" : false }, async (t) => {
  const dir = t.testdir({});
  const work = join(dir, "work");
  mkdirSync(work);
  git(work, "init", "-q", "-b", "main");
  writeFileSync(join(work, "f"), "1\n");
  git(work, "add", ".");
  git(work, "commit", "-qm", "first on main");
  git(work, "checkout", "-qb", "next");
  writeFileSync(join(work, "f"), "2\n");
  git(work, "commit", "-qam", "second on next");
  const bare = join(dir, "app.git");
  execFileSync("git", ["clone", "-q", "--bare", work, bare]);

  const yaml = readmeBlock("git-checkout");
  t.ok(yaml.includes(EXAMPLE_URL), "the example names its repository");
  const conf = join(dir, "flows.yml");
  writeFileSync(conf, yaml.replace(EXAMPLE_URL, `file://${bare}`));
  const floeRun = (...args: string[]) => spawnSync(process.execPath, [floeBin, "run", conf, ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, TMPDIR: dir } });

  const next = floeRun("--set", "branch=next");
  t.equal(next.status, 0, next.stderr);
  t.match(next.stdout, /\[build-branch\.show [0-9A-Z]{4}\] second on next on next$/m, "branch next, cloned into src/app");
  const main = floeRun();
  t.equal(main.status, 0, main.stderr);
  t.match(main.stdout, /\[build-branch\.show [0-9A-Z]{4}\] first on main on main$/m, "the field's default, main");
});
