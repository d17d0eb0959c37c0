import t from "tap";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureDir, fsyncDir, readJsonFile, removeStaleTemps, writeFileAtomic } from "../../store/atomic-file.js";
import { fsyncEnabled, setFsync } from "../../store/durability.js";

t.test("writeFileAtomic creates and replaces, leaving no temp files", async (t) => {
  const dir = t.testdir({});
  const p = join(dir, "run.json");
  await writeFileAtomic(p, JSON.stringify({ v: 1 }));
  t.same(await readJsonFile(p), { v: 1 });
  await writeFileAtomic(p, new TextEncoder().encode(JSON.stringify({ v: 2 })));
  t.same(await readJsonFile(p), { v: 2 });
  t.same(await readdir(dir), ["run.json"], "only the target is left");
});

t.test("concurrent writes to one file: the last one wins whole", async (t) => {
  const dir = t.testdir({});
  const p = join(dir, "a.json");
  await Promise.all(Array.from({ length: 20 }, (_, i) => writeFileAtomic(p, JSON.stringify({ i, pad: "x".repeat(10_000) }))));
  const v = (await readJsonFile(p)) as { i: number; pad: string };
  t.ok(Number.isInteger(v.i));
  t.equal(v.pad.length, 10_000);
  t.same(await readdir(dir), ["a.json"]);
});

t.test("fsync off still writes through temp + rename", async (t) => {
  const dir = t.testdir({});
  const was = fsyncEnabled();
  setFsync(false);
  t.teardown(() => setFsync(was));
  t.equal(fsyncEnabled(), false);
  await writeFileAtomic(join(dir, "f"), "hello");
  await writeFileAtomic(join(dir, "g"), "forced", { fsync: true });
  t.equal(await readFile(join(dir, "f"), "utf8"), "hello");
  t.equal(await readFile(join(dir, "g"), "utf8"), "forced");
  t.same((await readdir(dir)).sort(), ["f", "g"]);
});

t.test("a crash mid-write leaves the old content and a temp that is cleaned up", async (t) => {
  const dir = t.testdir({ "run.json": JSON.stringify({ state: "old" }) });
  const p = join(dir, "run.json");
  // What a process killed between write() and rename() leaves behind: a partial temp file.
  await writeFile(join(dir, ".run.json.4242.7.tmp"), '{"state":"ne');
  await writeFile(join(dir, ".keep.tmp"), "not ours");
  await writeFile(join(dir, "notes.txt"), "user file");
  t.same(await readJsonFile(p), { state: "old" }, "the target still reads whole");
  t.equal(await removeStaleTemps(dir), 1);
  t.same((await readdir(dir)).sort(), [".keep.tmp", "notes.txt", "run.json"], "only writeFileAtomic temps are removed");
  await writeFileAtomic(p, JSON.stringify({ state: "new" }));
  t.same(await readJsonFile(p), { state: "new" });
  t.equal(await removeStaleTemps(join(dir, "missing")), 0, "a missing folder has nothing stale");
});

t.test("removeStaleTemps leaves this process's in-flight temps alone", async (t) => {
  const dir = t.testdir({});
  const writes = Array.from({ length: 10 }, (_, i) => writeFileAtomic(join(dir, `f${i}`), "y".repeat(1 << 20)));
  // Runs while the writes are in flight; none of them may lose its temp file.
  const sweeps = Array.from({ length: 10 }, () => removeStaleTemps(dir));
  await Promise.all([...writes, ...sweeps]);
  t.equal((await readdir(dir)).length, 10);
});

t.test("readJsonFile: missing → undefined; corrupt → error naming the file", async (t) => {
  const dir = t.testdir({ "bad.json": '{"a": 1,', "empty.json": "" });
  t.equal(await readJsonFile(join(dir, "nope.json")), undefined);
  await t.rejects(readJsonFile(join(dir, "bad.json")), { message: new RegExp(`${join(dir, "bad.json")} is not valid JSON`) });
  await t.rejects(readJsonFile(join(dir, "empty.json")), { message: /empty\.json is not valid JSON/ });
});

t.test("writing into a missing folder fails naming the target", async (t) => {
  const dir = t.testdir({});
  const p = join(dir, "no", "such", "f.json");
  await t.rejects(writeFileAtomic(p, "{}"), { message: new RegExp(`can not write ${p}`), code: "ENOENT" });
});

t.test("ensureDir creates nested folders and is idempotent", async (t) => {
  const dir = t.testdir({});
  await ensureDir(join(dir, "a", "b", "c"));
  await ensureDir(join(dir, "a", "b", "c"));
  t.same(await readdir(join(dir, "a", "b")), ["c"]);
});

t.test("fsyncDir: callers of one directory share syncs; each gets one that began after its call", async (t) => {
  const dir = t.testdir({ a: "1" });
  const order: string[] = [];
  const first = fsyncDir(dir).then(() => order.push("first"));
  // Made while the first sync may already run: these need the next one, and share it.
  const later = Array.from({ length: 20 }, (_, i) => fsyncDir(dir).then(() => order.push(`later${i}`)));
  await Promise.all([first, ...later]);
  t.equal(order[0], "first", "the sync already asked for ends first");
  t.equal(order.length, 21, "every caller is answered");
  await t.rejects(fsyncDir(join(dir, "missing")), { code: "ENOENT" }, "a failed sync fails its callers");
  await t.resolves(fsyncDir(dir), "and the next call starts afresh");
});
