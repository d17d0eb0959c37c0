/** The run table: the one writer of run entries, through named transitions only. */
import t from "tap";
import type { RunExecutor } from "../../hub/run-executor.js";
import { makeRef, type RunRecord } from "../../hub/run-record.js";
import { IllegalTransition, RunTable, summarize } from "../../hub/run-table.js";

function record(run: string, flow = "f"): RunRecord {
  return {
    v: 1,
    ref: makeRef(flow, 1, run, "h1"),
    flow: { id: flow, ver: 1, name: flow, triggers: [], tasks: [], hostTags: [], resourceTags: [], env: [], reuseSpace: false, onHostLoss: "requeue" } as unknown as RunRecord["flow"],
    trigger: { id: "go", type: "data", values: {} },
    adoptedAt: 1,
    attempt: 1,
  };
}

// A unit test: the table never calls its executor, it only keeps it.
const executor = {} as RunExecutor;

t.test("a run's life: adopt → wait → hold → run → suspend → run → archive → forget", async (t) => {
  const table = new RunTable();
  const a = table.adopt(record("r1"));
  t.equal(a.state, "pending");
  const w = table.wait("r1", "resource db is held");
  t.equal(summarize(w).waiting, "resource db is held");
  t.not(w, a, "every transition makes a new entry: an old one no longer matches");
  const held = table.hold({ ...record("r1"), startedAt: 5 }, 7, "activating");
  t.same([held.state, held.token, held.why], ["suspended", 7, "activating"]);
  t.equal(summarize(held).state, "active", "suspended shows as active to the world");
  t.equal(summarize(held).waiting, undefined, "a waiting reason goes with the pend");
  const act = table.run("r1", executor);
  t.same([act.state, act.token, act.executor === executor], ["active", 7, true]);
  t.equal(table.suspend("r1", "stood down").why, "stood down");
  table.run("r1", executor);
  const done = table.archive({ ...record("r1"), result: "good" });
  t.same([done.state, done.record.result], ["archived", "good"]);
  t.same(table.tally(), { pending: 0, active: 0, archived: 1, oldestPendingAt: undefined });
  table.forget("r1");
  t.equal(table.get("r1"), undefined);
});

t.test("illegal transitions throw and change nothing", async (t) => {
  const table = new RunTable();
  t.throws(() => table.run("nope", executor), IllegalTransition, "no executor for an unknown run");
  table.adopt(record("p"));
  t.throws(() => table.adopt(record("p")), IllegalTransition, "adopted twice");
  t.throws(() => table.run("p", executor), /run p: run is not allowed from pending/, "a pend is held before it runs");
  t.throws(() => table.suspend("p", "stopping"), IllegalTransition, "a pend has nothing to suspend");
  table.hold(record("p"), 1, "activating");
  t.throws(() => table.wait("p", "x"), IllegalTransition, "only a pend waits");
  t.throws(() => table.hold(record("p"), 2, "activating"), IllegalTransition, "held twice");
  table.archive(record("p"));
  t.throws(() => table.archive(record("p")), IllegalTransition, "archived twice");
  t.throws(() => table.run("p", executor), IllegalTransition, "an archived run does not run again");
  t.throws(() => table.restore(record("p")), IllegalTransition, "restored over a known run");
  t.equal(table.get("p")?.state, "archived");
});

t.test("a pend goes straight to archive (cancelled, replaced); restore at start; queries", async (t) => {
  const table = new RunTable();
  table.adopt({ ...record("a1"), adoptedAt: 10 });
  table.adopt({ ...record("a2"), adoptedAt: 20 });
  table.restore({ ...record("a0", "g"), result: "bad" });
  table.archive({ ...record("a1"), result: "cancelled" });
  t.same(table.tally(), { pending: 1, active: 0, archived: 2, oldestPendingAt: 20 });
  t.same(table.query({ state: "archived" }).map((s) => s.ref.run), ["a1", "a0"], "newest first");
  t.same(table.query({ flow: "g" }).map((s) => s.ref.run), ["a0"]);
  t.same(table.ofVersion("f", 1, "pending").map((e) => e.record.ref.run), ["a2"]);
});

t.test("a flow version's archived runs, oldest first, as they are archived, restored and forgotten", async (t) => {
  const table = new RunTable();
  const ids = ["r05", "r01", "r09", "r03", "r07"];
  for (const id of ids) table.adopt(record(id));
  for (const id of ["r05", "r01", "r09"]) table.archive(record(id));
  table.restore(record("r02"));
  table.adopt(record("x1", "other"));
  table.archive(record("x1", "other"));
  const runs = (flow = "f") => table.ofVersion(flow, 1, "archived").map((e) => e.record.ref.run);
  t.same(runs(), ["r01", "r02", "r05", "r09"], "by run id, whatever the order they ended in");
  t.same(runs("other"), ["x1"], "per flow");
  t.same(table.ofVersion("f", 2, "archived"), [], "per version");
  table.revise("r05", { ...record("r05"), reason: "kept" });
  table.forget("r01");
  table.forget("r03"); // a pend forgotten: not among the archived
  t.same(runs(), ["r02", "r05", "r09"]);
  t.same(table.ofVersion("f", 1, "pending").map((e) => e.record.ref.run), ["r07"], "other states as before");
  for (const id of ["r02", "r05", "r09"]) table.forget(id);
  t.same(runs(), []);
});
