/** A task try's artifact directories on real files: names, links, directories, inputs as copies. */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import t from "tap";
import { DEFAULT_ARTIFACTS } from "../../flows/model.js";
import { ArtifactObjects } from "../../hub/artifact-objects.js";
import { artifactNameProblem, TaskArtifacts } from "../../hub/task-artifacts.js";
import { ObjectStore } from "../../store/object-store.js";

function envOf(env: readonly string[], key: string): string {
  const e = env.find((x) => x.startsWith(`${key}=`));
  if (e === undefined) throw new Error(`no ${key}`);
  return e.slice(key.length + 1);
}

function setup(dir: string) {
  const store = new ObjectStore(join(dir, "root"));
  const objects = new ArtifactObjects(store, pino({ level: "silent" }));
  return { store, ta: new TaskArtifacts(objects, join(dir, "root", "scratch"), () => DEFAULT_ARTIFACTS) };
}

t.test("names: plain file names only", async (t) => {
  t.equal(artifactNameProblem("report.html"), undefined);
  t.equal(artifactNameProblem("build-1.2.3.tar.gz"), undefined);
  t.equal(artifactNameProblem(".hidden"), undefined);
  t.match(artifactNameProblem(".."), /is not a file name/);
  t.match(artifactNameProblem("."), /is not a file name/);
  t.match(artifactNameProblem(""), /is not a file name/);
  t.match(artifactNameProblem("../etc/passwd"), /path separator/);
  t.match(artifactNameProblem("a/b"), /path separator/);
  t.match(artifactNameProblem("a\\b"), /path separator/);
  t.match(artifactNameProblem("x..y"), /holds "\.\."/);
  t.match(artifactNameProblem("bad\nname"), /control character/);
  t.match(artifactNameProblem("x".repeat(256)), /longer than 255 bytes/);
});

t.test("a link out of the directory is refused, never followed; nothing is stored", async (t) => {
  const dir = t.testdir({ "secret.txt": "not yours" });
  const { store, ta } = setup(dir);
  const tr = await ta.prepare("RUN1", "make", "exec", "1", []);
  const out = envOf(tr.env, "FLOE_ARTIFACTS");
  t.ok(out.startsWith(join(dir, "root", "scratch", "RUN1")), "in the host's scratch area");
  symlinkSync(join(dir, "secret.txt"), join(out, "escape"));
  writeFileSync(join(out, "fine.txt"), "fine");
  const got = await tr.collect();
  t.same(got, { error: 'artifacts refused: "escape" is a symbolic link; links are not followed, leave the file itself' });
  t.equal(await store.usage(), 0, "not even the fine file is kept from a refused try");
  await tr.dispose();
  t.notOk(existsSync(out));
});

t.test("a directory is refused with what to do instead", async (t) => {
  const dir = t.testdir({});
  const { ta } = setup(dir);
  const tr = await ta.prepare("RUN1", "make", "exec", "1", []);
  const out = envOf(tr.env, "FLOE_ARTIFACTS");
  mkdirSync(join(out, "site"));
  writeFileSync(join(out, "site", "index.html"), "<p>");
  const got = await tr.collect();
  t.match(got, { error: /"site" is a directory; only plain files at the top of \$FLOE_ARTIFACTS are kept/ });
});

t.test("inputs are copies the task may change; the store keeps the original", async (t) => {
  const dir = t.testdir({});
  const { store, ta } = setup(dir);
  const first = await ta.prepare("RUN1", "make", "exec", "1", []);
  writeFileSync(join(envOf(first.env, "FLOE_ARTIFACTS"), "data.txt"), "original");
  const kept = await first.collect();
  if (!("artifacts" in kept)) throw new Error(kept.error);
  await first.dispose();
  const second = await ta.prepare("RUN1", "use", "exec", "1", [{ node: "make", artifacts: kept.artifacts }]);
  const input = join(envOf(second.env, "FLOE_INPUTS"), "make", "data.txt");
  t.equal(readFileSync(input, "utf8"), "original");
  t.equal(statSync(input).nlink, 1, "not a hard link into the store");
  writeFileSync(input, "changed by the task");
  const sha = kept.artifacts[0]?.sha256 ?? "";
  t.equal(readFileSync(store.pathOf(sha), "utf8"), "original");
  t.same(await second.collect(), { artifacts: [] }, "an empty $FLOE_ARTIFACTS keeps nothing");
  await second.dispose();
  const timer = await ta.prepare("RUN1", "wait", "timer", "1", [{ node: "make", artifacts: kept.artifacts }]);
  t.same(readdirSync(envOf(timer.env, "FLOE_INPUTS")), [], "a task that runs no command of the flow's gets no copies");
  await timer.dispose();
  const leftover = await ta.prepare("RUN1", "late", "exec", "1", [{ node: "make", artifacts: kept.artifacts }]);
  writeFileSync(join(envOf(leftover.env, "FLOE_ARTIFACTS"), "x"), "x"); // a try whose folders were never disposed of
  await ta.forgetRun("RUN1");
  t.same(readdirSync(join(dir, "root", "scratch")).filter((n) => n.startsWith("RUN1.")), [], "the run's end removes what its tries left in the scratch area");
});
