/**
 * A task's output lines are written at once, synced at the latest a second after they were
 * written, and always before the task's end lets the next node start — observed on the
 * real files by wrapping node:fs's writeSync and fdatasync (the store's own calls). A log's
 * fdatasync is made to take 300 ms longer, so that a next task started without waiting for
 * it would be seen.
 */
import t from "tap";
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { basename } from "node:path";
import { runTask } from "../../agent/run-task.js";
import type { TaskRunner } from "../../agent/contract.js";
import { startHub, until } from "../helpers/hub.js";

interface Call {
  readonly what: "write" | "sync" | "start";
  readonly file: string;
  readonly seq: number;
}
const calls: Call[] = [];
let seq = 0;
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
  if (file.endsWith(".log")) calls.push({ what: "write", file, seq: ++seq });
  return n;
}) as typeof fs.writeSync;
fs.fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
  const file = fdPath(fd);
  realDatasync(fd, (e) => {
    if (!file.endsWith(".log")) return cb(e);
    setTimeout(() => {
      if (e === null) calls.push({ what: "sync", file, seq: ++seq });
      cb(e);
    }, 300);
  });
}) as typeof fs.fdatasync;
syncBuiltinESMExports();
t.teardown(() => {
  fs.writeSync = realWrite;
  fs.fdatasync = realDatasync;
  syncBuiltinESMExports();
});

/** Notes when each task's process is asked for, then runs it for real. */
const noting: TaskRunner = (req) => {
  calls.push({ what: "start", file: `${req.runId}/${req.nodeId}`, seq: ++seq });
  return runTask(req);
};

t.test("a task's output is durable before the next task starts", async (t) => {
  const h = await startHub(t, `
flows:
  - id: two
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: "echo one; echo two"}}
      - {name: b, type: exec, listen: task.a.good, opts: {cmd: "true"}}
      - {name: done, type: end, listen: task.b.good}
`, { runTask: noting });
  const run = (await h.hub.trigger({ flow: "two" })).ref.run;
  t.equal((await h.end(run)).result, "good");
  const aLog = calls.filter((c) => basename(c.file) === "a.log" && c.file.includes(run));
  const lastWrite = Math.max(...aLog.filter((c) => c.what === "write").map((c) => c.seq));
  const bStart = calls.find((c) => c.what === "start" && c.file === `${run}/b`)?.seq ?? Number.NaN;
  const syncs = aLog.filter((c) => c.what === "sync").map((c) => c.seq);
  t.ok(aLog.filter((c) => c.what === "write").length >= 1, "a's lines were written");
  t.ok(syncs.some((s) => s > lastWrite && s < bStart), "a sync of a.log after its last write finished before b was started");
});

t.test("the output of a long task is durable within a second or so, while it runs", async (t) => {
  const h = await startHub(t, `
flows:
  - id: slow
    triggers: [{name: go, type: data}]
    tasks:
      - {name: s, type: exec, listen: trigger.good, opts: {shell: "echo started; sleep 60"}}
`, { runTask: noting });
  const run = (await h.hub.trigger({ flow: "slow" })).ref.run;
  const sLog = (): Call[] => calls.filter((c) => basename(c.file) === "s.log" && c.file.includes(run));
  await until(() => sLog().some((c) => c.what === "write"), 20_000, "the task's first lines");
  await until(() => sLog().some((c) => c.what === "sync"), 20_000, "a sync of the running task's log");
  t.equal((await h.hub.getRun(run)).state, "active", "synced while the task still runs");
  await h.hub.cancel(run, "test");
  t.equal((await h.end(run)).result, "cancelled");
});
