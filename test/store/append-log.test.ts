import t from "tap";
import { existsSync } from "node:fs";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AppendLog, readJsonLines, repairTornTail, stats } from "../../store/append-log.js";

t.test("1000 appends then flush: all in order, in a few batches", async (t) => {
  const p = join(t.testdir({}), "node-a.log");
  const log = new AppendLog(p);
  const before = stats.batches;
  for (let i = 0; i < 1000; i++) log.append({ seq: i, text: `line ${i}` });
  await log.flush();
  const r = await readJsonLines(p);
  t.equal(r.records.length, 1000);
  t.same(r.records.map((x) => (x as { seq: number }).seq), Array.from({ length: 1000 }, (_, i) => i), "in append order");
  t.same({ torn: r.torn, corrupt: r.corrupt }, { torn: false, corrupt: 0 });
  t.ok(log.stats.batches <= 2, `1000 records cost ${log.stats.batches} write+fdatasync rounds`);
  t.equal(log.stats.records, 1000);
  t.equal(stats.batches - before, log.stats.batches, "module totals count the same batches");
  await log.close();
});

t.test("appends during an in-flight write join the next batch (group commit)", async (t) => {
  const p = join(t.testdir({}), "node-a.json");
  const log = await AppendLog.open(p);
  const flushes: Promise<void>[] = [];
  // 50 producers, each appending 20 records one tick apart, flushing after each.
  await Promise.all(
    Array.from({ length: 50 }, async (_, w) => {
      for (let i = 0; i < 20; i++) {
        log.append({ w, i });
        flushes.push(log.flush());
        await new Promise((r) => setImmediate(r));
      }
    }),
  );
  await Promise.all(flushes);
  const r = await readJsonLines(p);
  t.equal(r.records.length, 1000);
  for (let w = 0; w < 50; w++) {
    const mine = r.records.filter((x) => (x as { w: number }).w === w).map((x) => (x as { i: number }).i);
    if (mine.join() !== Array.from({ length: 20 }, (_, i) => i).join()) t.fail(`producer ${w} out of order: ${mine.join()}`);
  }
  t.ok(log.stats.batches < 1000 / 10, `${log.stats.batches} batches for 1000 records`);
  await log.close();
});

t.test("flush resolves only once earlier appends are on disk; empty flush is immediate", async (t) => {
  const p = join(t.testdir({}), "x.log");
  const log = new AppendLog(p);
  await log.flush();
  t.notOk(existsSync(p), "a lazy log with nothing appended creates nothing");
  log.append({ a: 1 });
  const f = log.flush();
  log.append({ a: 2 });
  await f;
  t.match((await readJsonLines(p)).records, [{ a: 1 }]);
  await log.flush();
  t.same((await readJsonLines(p)).records, [{ a: 1 }, { a: 2 }]);
  await log.close();
});

t.test("AppendLog.open creates the file and its folders", async (t) => {
  const p = join(t.testdir({}), "floes", "f", "1", "active", "r", "node-t.json");
  const log = await AppendLog.open(p);
  t.equal(await readFile(p, "utf8"), "");
  await log.close();
});

t.test("close is idempotent, flushes, and append after close throws", async (t) => {
  const p = join(t.testdir({}), "c.log");
  const log = new AppendLog(p);
  log.append("last words");
  const c1 = log.close();
  t.equal(log.close(), c1, "the same memoised promise");
  await c1;
  t.same((await readJsonLines(p)).records, ["last words"]);
  t.throws(() => log.append(1), { message: /c\.log: append after close/ });
});

t.test("records that are not JSON are refused at append", async (t) => {
  const log = new AppendLog(join(t.testdir({}), "j.log"));
  t.throws(() => log.append(undefined), TypeError);
  const circular: { self?: unknown } = {};
  circular.self = circular;
  t.throws(() => log.append(circular), { message: /j\.log: record is not JSON/ });
  t.throws(() => log.append(10n), { message: /record is not JSON/ });
  await log.close();
});

t.test("a failing write rejects flush and close with an error naming the file", { skip: !existsSync("/dev/full") && "needs /dev/full" }, async (t) => {
  // /dev/full accepts open() and fails every write with ENOSPC.
  const log = new AppendLog("/dev/full");
  log.append({ a: 1 });
  await t.rejects(log.flush(), { message: /can not append to \/dev\/full: .*ENOSPC/ });
  log.append({ a: 2 });
  await t.rejects(log.flush(), { message: /\/dev\/full/ }, "the failure is sticky");
  await t.rejects(log.close(), { message: /\/dev\/full/ });
});

t.test("an unopenable path rejects flush naming the file", async (t) => {
  const dir = t.testdir({ "a-file": "" });
  const p = join(dir, "a-file", "x.log");
  const log = new AppendLog(p);
  log.append(1);
  await t.rejects(log.flush(), { message: new RegExp(`can not append to ${p}`) });
  await t.rejects(log.close());
});

t.test("readJsonLines: missing file is empty", async (t) => {
  t.same(await readJsonLines(join(t.testdir({}), "none.log")), { records: [], torn: false, corrupt: 0 });
});

t.test("torn last line: tolerated on read, repaired on reopen", async (t) => {
  const p = join(t.testdir({}), "node-b.log");
  const log = new AppendLog(p);
  for (let i = 0; i < 5; i++) log.append({ i });
  await log.close();
  await appendFile(p, '{"i":5,"te'); // a crash in the middle of a write
  const r = await readJsonLines(p);
  t.same(r.records, [0, 1, 2, 3, 4].map((i) => ({ i })));
  t.equal(r.torn, true);
  t.equal(r.corrupt, 0);

  const again = new AppendLog(p);
  again.append({ i: 5 });
  again.append({ i: 6 });
  await again.close();
  const r2 = await readJsonLines(p);
  t.same(r2.records, [0, 1, 2, 3, 4, 5, 6].map((i) => ({ i })), "new appends start on a clean line");
  t.same({ torn: r2.torn, corrupt: r2.corrupt }, { torn: false, corrupt: 0 });
});

t.test("an unterminated tail that happens to parse is still torn", async (t) => {
  const p = join(t.testdir({}), "n.log");
  await writeFile(p, "1\n2\n12"); // "12" may be the start of "123"
  t.same(await readJsonLines(p), { records: [1, 2], torn: true, corrupt: 0 });
  t.equal(await repairTornTail(p), true);
  t.equal(await readFile(p, "utf8"), "1\n2\n");
  t.equal(await repairTornTail(p), false, "a clean file is left alone");
});

t.test("a complete but unparsable last line is torn, and repaired", async (t) => {
  const p = join(t.testdir({}), "z.log");
  await writeFile(p, '{"a":1}\n\u0000\u0000\u0000\n');
  t.same(await readJsonLines(p), { records: [{ a: 1 }], torn: true, corrupt: 0 });
  t.equal(await repairTornTail(p), true);
  t.equal(await readFile(p, "utf8"), '{"a":1}\n');
});

t.test("a torn line with no newline at all in the file", async (t) => {
  const p = join(t.testdir({}), "only.log");
  await writeFile(p, '{"x":');
  t.same(await readJsonLines(p), { records: [], torn: true, corrupt: 0 });
  t.equal(await repairTornTail(p), true);
  t.equal(await readFile(p, "utf8"), "");
});

t.test("a long torn tail (beyond one read chunk) is cut whole", async (t) => {
  const p = join(t.testdir({}), "long.log");
  await writeFile(p, `"ok"\n"${"y".repeat(200_000)}`);
  t.equal(await repairTornTail(p), true);
  t.equal(await readFile(p, "utf8"), '"ok"\n');
});

t.test("a corrupt line in the middle is skipped and counted", async (t) => {
  const p = join(t.testdir({}), "m.log");
  await writeFile(p, '{"a":1}\nnot json\n{"a":2}\n\n{"a":\n{"a":3}\n');
  t.same(await readJsonLines(p), { records: [{ a: 1 }, { a: 2 }, { a: 3 }], torn: false, corrupt: 2 });
  t.equal(await repairTornTail(p), false, "only the tail is repaired");
});

t.test("a lazy record is written at once but synced only with the next synced record or a flush", async (t) => {
  const p = join(t.testdir({}), "node-a.json");
  const log = await AppendLog.open(p);
  log.append({ t: "pgid", pgid: 42 }, { lazy: true });
  // Written in the next turn of the event loop, with no sync of its own.
  for (let i = 0; i < 100 && (await readFile(p, "utf8")) === ""; i++) await new Promise((r) => setImmediate(r));
  t.equal(await readFile(p, "utf8"), '{"t":"pgid","pgid":42}\n', "on file for the next reader");
  t.same({ batches: log.stats.batches, syncs: log.stats.syncs }, { batches: 1, syncs: 0 });
  await log.flush();
  t.equal(log.stats.syncs, 1, "a flush syncs what was written lazily");
  t.equal(log.stats.batches, 2, "with a round of its own (nothing left to write)");
  await log.flush();
  t.equal(log.stats.syncs, 1, "nothing owed, nothing synced");

  // Lazy then synced in one tick: one write, one sync for both.
  log.append({ t: "pgid", pgid: 43 }, { lazy: true });
  log.append({ t: "done" });
  await log.flush();
  t.same({ batches: log.stats.batches, syncs: log.stats.syncs }, { batches: 3, syncs: 2 });
  t.same((await readJsonLines(p)).records, [{ t: "pgid", pgid: 42 }, { t: "pgid", pgid: 43 }, { t: "done" }]);
  await log.close();
});

t.test("close syncs lazy records", async (t) => {
  const p = join(t.testdir({}), "node-b.json");
  const log = new AppendLog(p);
  log.append({ t: "pgid", pgid: 7 }, { lazy: true });
  await log.close();
  t.equal(log.stats.syncs, 1);
  t.same((await readJsonLines(p)).records, [{ t: "pgid", pgid: 7 }]);
});

t.test("a syncWithinMs record is written at once and synced by its deadline, one sync for those before it", async (t) => {
  const p = join(t.testdir({}), "node-c.log");
  const log = new AppendLog(p);
  log.append({ seq: 1, text: "first" }, { syncWithinMs: 60_000 });
  // "At once": within the store's own write, which a loaded machine may delay; not a sync.
  const shown = Date.now() + 10_000;
  while (Date.now() < shown && (!existsSync(p) || (await readFile(p, "utf8")) === "")) await new Promise((r) => setTimeout(r, 5));
  t.equal(await readFile(p, "utf8"), '{"seq":1,"text":"first"}\n', "on file for the next reader at once");
  t.equal(log.stats.syncs, 0, "not synced on its own account before its deadline (a minute away)");
  await log.flush();
  t.equal(log.stats.syncs, 1, "a flush makes it durable early");

  // A short deadline: the timer syncs without anyone asking.
  const before = log.stats.syncs;
  for (let i = 2; i <= 4; i++) log.append({ seq: i, text: `line ${i}` }, { syncWithinMs: 50 });
  const deadline = Date.now() + 20_000;
  while (log.stats.syncs === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(log.stats.syncs, before + 1, "the deadline brought one sync for the three lines");
  t.same((await readJsonLines(p)).records.map((r) => (r as { seq: number }).seq), [1, 2, 3, 4]);
  await log.close();
  t.equal(log.stats.syncs, before + 1, "close: nothing was owed");
});

t.test("a pending syncWithinMs deadline does not keep the process alive; close keeps the promise", async (t) => {
  const p = join(t.testdir({}), "node-d.log");
  const log = new AppendLog(p);
  log.append({ seq: 1 }, { syncWithinMs: 3_600_000 });
  await log.close();
  t.equal(log.stats.syncs, 1, "close synced it");
  t.same((await readJsonLines(p)).records, [{ seq: 1 }]);
});
