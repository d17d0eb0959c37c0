/**
 * Fencing after a stand-down (unit test, fakes around the real run table): whatever the
 * renewal that regained the lease said, every run here is checked against the cluster. A
 * renewal whose reply was lost during the stand-down may have been the one that found the
 * lease lapsed, and the next one says "renewed" (the partition chaos, seed 1234, found a
 * task retried on a host whose run had just been reaped).
 */
import pino from "pino";
import t from "tap";
import type { HostCommands } from "../../agent/contract.js";
import type { ClusterState } from "../../hub/cluster-state.js";
import type { Executors } from "../../hub/executors.js";
import { Fencing } from "../../hub/fencing.js";
import type { Finisher } from "../../hub/finisher.js";
import type { Lease } from "../../hub/lease.js";
import type { NodeFiles } from "../../hub/node-files.js";
import type { RunExecutor } from "../../hub/run-executor.js";
import { makeRef, type RunRecord } from "../../hub/run-record.js";
import { RunTable } from "../../hub/run-table.js";
import type { RunFiles } from "../../store/run-files.js";

function record(run: string): RunRecord {
  return {
    v: 1,
    ref: makeRef("f", 1, run, "h1"),
    flow: { id: "f", ver: 1, name: "f", triggers: [], tasks: [], hostTags: [], resourceTags: [], env: [], reuseSpace: false, onHostLoss: "requeue" } as unknown as RunRecord["flow"],
    trigger: { id: "go", type: "data", values: {} },
    adoptedAt: 1,
    attempt: 1,
  };
}

function setup(current: (run: string) => boolean) {
  const table = new RunTable();
  const suspended: string[] = [];
  const removed: string[] = [];
  const executor = (run: string) => ({ runningGroups: () => [], suspend: async () => void suspended.push(run) }) as unknown as RunExecutor;
  for (const [run, token] of [["taken", 1], ["mine", 2]] as const) {
    table.hold(record(run), token, "activating");
    table.run(run, executor(run));
  }
  const fencing = new Fencing({
    table,
    files: { remove: async (_s: string, ref: { run: string }) => void removed.push(ref.run) } as unknown as RunFiles,
    nodeFiles: { close: async () => undefined } as unknown as NodeFiles,
    state: { isCurrent: async (run: string) => current(run) } as unknown as ClusterState,
    commands: {} as HostCommands,
    executors: {} as Executors,
    finisher: { isEnding: () => false, persist: (_w: string, fn: () => Promise<unknown>) => fn() } as unknown as Finisher,
    log: pino({ level: "silent" }),
    clustered: true,
    lease: () => ({ vouched: true }) as unknown as Lease,
    resumed: () => undefined,
  });
  return { table, fencing, suspended, removed };
}

t.test("regained after a stand-down with 'renewed': a run the cluster gave away meanwhile is stopped and dropped here", async (t) => {
  const { table, fencing, removed } = setup((run) => run === "mine");
  // Both runs were activated after the stand-down began (not suspended by it).
  await fencing.regained("renewed");
  t.equal(table.get("taken"), undefined, "the run whose token is gone is no longer this host's");
  t.same(removed, ["taken"], "and its copy goes");
  t.equal(table.get("mine")?.state, "active", "the run still this host's goes on");
});
