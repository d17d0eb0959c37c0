/**
 * A run's journal costs a sync per task start and one at the end, not one per record: a
 * task's end is not synced on its own account, since the next task's start record, synced
 * before that task's process starts, comes after it in the same file. Observed on the real
 * files by wrapping node:fs's writeSync and fdatasync (the store's own calls): the syncs of
 * one run's journal are counted, and each task is seen to start only after a sync that
 * followed the write of the end it listens to.
 */
import t from "tap";
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { runTask } from "../../agent/run-task.js";
import type { TaskRunner } from "../../agent/contract.js";
import { startHub } from "../helpers/hub.js";

interface Call {
  readonly what: "write" | "sync" | "start";
  readonly file: string;
  readonly text: string;
}
const calls: Call[] = [];
const fdPath = (fd: number): string => {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return "?";
  }
};
const realWrite = fs.writeSync;
const realDatasync = fs.fdatasync;
fs.writeSync = ((fd: number, ...rest: unknown[]) => {
  const file = fdPath(fd);
  const n = (realWrite as (...a: unknown[]) => number)(fd, ...rest);
  const b = rest[0];
  if (file.endsWith("/journal")) calls.push({ what: "write", file, text: Buffer.isBuffer(b) ? b.toString("utf8") : String(b) });
  return n;
}) as typeof fs.writeSync;
fs.fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
  const file = fdPath(fd);
  realDatasync(fd, (e) => {
    if (e === null && file.endsWith("/journal")) calls.push({ what: "sync", file, text: "" });
    cb(e);
  });
}) as typeof fs.fdatasync;
syncBuiltinESMExports();
t.teardown(() => {
  fs.writeSync = realWrite;
  fs.fdatasync = realDatasync;
  syncBuiltinESMExports();
});

const noting: TaskRunner = (req) => {
  calls.push({ what: "start", file: `${req.runId}/${req.nodeId}`, text: "" });
  return runTask(req);
};

t.test("three tasks in a row: four syncs of the journal, each start after its cause is on disk", async (t) => {
  const h = await startHub(t, `
flows:
  - id: chain
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}
      - {name: b, type: exec, listen: task.a.good, opts: {cmd: "true"}}
      - {name: c, type: exec, listen: task.b.good, opts: {cmd: "true"}}
      - {name: fin, type: end, listen: task.c.good}
`, { runTask: noting });
  // The first run starts the spawn helper (seconds on a busy machine): its output lines'
  // one-second sync deadline may pass while it waits. The second is measured.
  const warm = (await h.hub.trigger({ flow: "chain" })).ref.run;
  t.equal((await h.end(warm)).result, "good");
  const run = (await h.hub.trigger({ flow: "chain" })).ref.run;
  t.equal((await h.end(run)).result, "good");
  const mine = calls.filter((c) => c.file.includes(run));
  const syncs = mine.filter((c) => c.what === "sync").length;
  // a, b and c's starts, then the end's flush (c's end and fin's record). Each end synced
  // on its own as well would make seven.
  t.equal(syncs, 4, `${syncs} syncs of the journal for the run`);
  for (const [task, cause] of [["b", "a"], ["c", "b"]] as const) {
    const start = mine.findIndex((c) => c.what === "start" && c.file.endsWith(`/${task}`));
    const ended = mine.findIndex((c) => c.what === "write" && c.text.includes(`["${cause}",{"t":"done"`));
    t.ok(ended >= 0 && start > ended, `${cause}'s end was written before ${task} started`);
    t.ok(mine.slice(ended, start).some((c) => c.what === "sync"), `and synced before ${task} started`);
  }
});
