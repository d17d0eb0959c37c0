/**
 * One host per --root: a second floe on the same root refuses to start, naming the pid
 * that holds it; a lock left by a host killed with -9 (or naming a pid now used by another
 * program) is taken over; a clean stop removes it.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startFloe } from "../helpers/floe-process.js";
import { floeBin } from "../helpers/paths.js";

const FLOW = "flows:\n  - id: a\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: x, type: exec, listen: trigger.good, opts: {cmd: \"true\"}}\n";

t.test("a second host on the same root is refused; a clean stop frees the root", async (t) => {
  const dir = t.testdir({ "flows.yml": FLOW });
  const root = join(dir, "root");
  const first = await startFloe({ conf: join(dir, "flows.yml"), root });
  t.teardown(() => first.kill9());
  t.equal(readFileSync(join(root, "lock"), "utf8").trim(), String(first.child.pid));
  const second = spawnSync(process.execPath, [floeBin, "serve", `--conf=${join(dir, "flows.yml")}`, `--root=${root}`, "--bind=127.0.0.1:0", "--host=h2"], { encoding: "utf8", timeout: 30_000 });
  t.equal(second.status, 1, second.stderr);
  t.match(second.stderr, `root ${root} is in use by pid ${first.child.pid}`);
  t.equal(readFileSync(join(root, "lock"), "utf8").trim(), String(first.child.pid), "the refused host left the lock alone");
  const run = spawnSync(process.execPath, [floeBin, "run", join(dir, "flows.yml"), `--root=${root}`], { encoding: "utf8", timeout: 30_000 });
  t.equal(run.status, 1, "floe run on a root in use is refused too");
  t.match(run.stderr, "is in use by pid");
  t.equal(await first.stop(), 0);
  t.notOk(existsSync(join(root, "lock")), "a clean stop removes the lock");
});

t.test("a lock left by kill -9 is taken over", async (t) => {
  const dir = t.testdir({ "flows.yml": FLOW });
  const root = join(dir, "root");
  const first = await startFloe({ conf: join(dir, "flows.yml"), root });
  await first.kill9();
  t.ok(existsSync(join(root, "lock")), "kill -9 leaves the lock behind");
  const second = await startFloe({ conf: join(dir, "flows.yml"), root, host: "h2" });
  t.teardown(() => second.kill9());
  t.equal(readFileSync(join(root, "lock"), "utf8").trim(), String(second.child.pid));
  t.equal(await second.stop(), 0);
});

t.test("a lock naming a live process that is not floe is taken over", async (t) => {
  const dir = t.testdir({ "flows.yml": FLOW });
  const root = join(dir, "root");
  const other = spawn("sleep", ["60"], { stdio: "ignore" });
  t.teardown(() => void other.kill("SIGKILL"));
  mkdirSync(root);
  writeFileSync(join(root, "lock"), `${other.pid}\n`);
  const f = await startFloe({ conf: join(dir, "flows.yml"), root });
  t.teardown(() => f.kill9());
  t.equal(readFileSync(join(root, "lock"), "utf8").trim(), String(f.child.pid));
});
