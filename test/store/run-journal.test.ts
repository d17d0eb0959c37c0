/**
 * A run's journal: the records of all its nodes in one append-only file, read back by node
 * in order, a torn last line left out, and the per-node status files of the layout before
 * it read first (a run of that layout resumed by this version has both).
 */
import t from "tap";
import { appendFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readRunJournal, RunJournal } from "../../store/run-journal.js";

t.test("records of several nodes share one file and one sync, and read back by node in order", async (t) => {
  const dir = t.testdir({});
  const j = new RunJournal(join(dir, "journal"));
  for (let i = 0; i < 30; i++) j.append(["a", "b", "c"][i % 3] as string, { t: "x", i });
  await j.flush();
  t.equal(j.log.stats.syncs, 1, "the records of every node ready in one turn: one fdatasync");
  await j.close();
  const r = await readRunJournal(dir);
  t.same([...r.byNode.keys()].sort(), ["a", "b", "c"]);
  t.same(r.byNode.get("b")?.map((x) => (x as { i: number }).i), [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);
  t.same({ torn: r.torn, bad: r.bad }, { torn: false, bad: 0 });
});

t.test("a torn last line is left out on read, and cut before the next append", async (t) => {
  const dir = t.testdir({});
  const p = join(dir, "journal");
  const j = new RunJournal(p);
  j.append("a", { t: "start", at: 1 });
  await j.close();
  await appendFile(p, '["a",{"t":"do'); // a crash mid-write
  let r = await readRunJournal(dir);
  t.equal(r.torn, true);
  t.same(r.byNode.get("a"), [{ t: "start", at: 1 }]);
  const again = new RunJournal(p); // a restarted host reopens it
  again.append("a", { t: "done", at: 2 });
  await again.close();
  r = await readRunJournal(dir);
  t.same(r.byNode.get("a"), [{ t: "start", at: 1 }, { t: "done", at: 2 }]);
  t.same({ torn: r.torn, bad: r.bad }, { torn: false, bad: 0 });
});

t.test("the old layout's node-<id>.json files are read, before the journal's records", async (t) => {
  const dir = t.testdir({});
  await writeFile(join(dir, "node-a.json"), '{"t":"start","at":1}\n{"t":"do');
  await writeFile(join(dir, "node-my-task.json"), '{"t":"start","at":1}\n');
  await writeFile(join(dir, "node-a.log"), '{"seq":1}\n');
  await writeFile(join(dir, "journal"), '["a",{"t":"done","at":3}]\n"not a record"\n');
  const r = await readRunJournal(dir);
  t.same(r.byNode.get("a"), [{ t: "start", at: 1 }, { t: "done", at: 3 }]);
  t.same(r.byNode.get("my-task"), [{ t: "start", at: 1 }], "a node id with a dash");
  t.equal(r.bad, 1, "a line that is not [node, record] is left out and counted");
});

t.test("a folder with neither reads as no records", async (t) => {
  const r = await readRunJournal(join(t.testdir({}), "gone"));
  t.equal(r.byNode.size, 0);
});
