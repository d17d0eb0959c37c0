import t from "tap";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { moveRunDir } from "../../store/run-dirs.js";

t.test("moves a run directory, creating the target's parent", async (t) => {
  const root = t.testdir({ pending: { r1: { "run.json": '{"s":"pending"}' } } });
  await moveRunDir(join(root, "pending", "r1"), join(root, "active", "r1"));
  t.same(await readdir(join(root, "pending")), []);
  t.equal(await readFile(join(root, "active", "r1", "run.json"), "utf8"), '{"s":"pending"}');
});

t.test("idempotent: a second move after the first (crash recovery) succeeds", async (t) => {
  const root = t.testdir({ active: { r1: { "run.json": "{}" } } });
  const from = join(root, "active", "r1");
  const to = join(root, "archive", "r1");
  await moveRunDir(from, to);
  await moveRunDir(from, to);
  t.same(await readdir(join(root, "archive", "r1")), ["run.json"]);
});

t.test("neither side exists → error naming both", async (t) => {
  const root = t.testdir({});
  const from = join(root, "pending", "gone");
  await t.rejects(moveRunDir(from, join(root, "active", "gone")), { message: new RegExp(`${from} to .*neither exists`) });
});

t.test("target already holds a run → clear error, source untouched", async (t) => {
  const root = t.testdir({ pending: { r1: { "run.json": "{}" } }, active: { r1: { "run.json": "{}" } } });
  await t.rejects(moveRunDir(join(root, "pending", "r1"), join(root, "active", "r1")), { message: /target already exists/ });
  t.same(await readdir(join(root, "pending", "r1")), ["run.json"]);
});
