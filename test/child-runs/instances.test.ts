/**
 * The seam for fan-out (`for-each` on a `type: flow` task): the child-run call made for several
 * instances of one node at once, against a real embedded hub. Each instance gets a child of
 * its own, with `item` among its trigger values and its index in the child's parent link, and
 * the parent's map of children (what a requeued parent re-attaches by) keeps every one of
 * them although they were written at the same moment.
 * And the id a task journalled before adopting its child: adopted under it when the crash
 * came first, re-attached to (never adopted twice) when it did not.
 */
import { pino } from "pino";
import t from "tap";
import { ChildRuns } from "../../hub/child-runs.js";
import { LocalClusterState } from "../../hub/cluster-state.js";
import { makeRef, type RunRecord } from "../../hub/run-record.js";
import { runIdFactory } from "../../hub/run-ids.js";
import type { TaskNode } from "../../flows/model.js";
import { config, startHub } from "../helpers/hub.js";

const CONF = `
flows:
  - id: fan
    tasks:
      - {id: each, type: flow, listen: trigger.good, opts: {flow: one-item, values: {MODE: fast}}}
  - id: one-item
    tasks:
      - {id: work, type: exec, listen: trigger.good, opts: {shell: 'echo "ITEM=$item" >> $FLOE_OUTPUT; echo "MODE=$MODE" >> $FLOE_OUTPUT'}}
`;

t.test("concurrent instances of one flow task: a child each, with its item; all remembered", async (t) => {
  const h = await startHub(t, CONF);
  const state = new LocalClusterState();
  const newRunId = runIdFactory();
  const children = new ChildRuns({
    clustered: false,
    state,
    bus: h.hub.bus,
    log: pino({ level: "silent" }),
    newRunId,
    findFlow: (id, ver) => h.hub.findFlow(id, ver),
    trigger: (req) => h.hub.trigger(req),
    cancel: (run, by) => h.hub.cancel(run, by),
    summary: async (run) => h.hub.getRun(run).catch(() => undefined),
    runningHere: () => true,
    ready: Promise.resolve(),
  });
  const flow = config(CONF).flows[0];
  if (flow === undefined) throw new Error("no flow");
  const node = flow.tasks[0] as TaskNode;
  const parent: RunRecord = { v: 1, ref: makeRef("fan", 1, newRunId(), "h1"), flow, trigger: { id: "manual", type: "manual", values: {} }, adoptedAt: Date.now(), attempt: 1 };
  const started: string[][] = [[], [], []];
  const items = ["alpha", "beta", "gamma"];
  const results = await Promise.all(
    items.map((item, index) =>
      children.run({ parent, node, env: [], upstream: [], instance: { index, item }, signal: AbortSignal.timeout(30_000), started: async (run) => void started[index]?.push(run), line: () => undefined }),
    ),
  );
  for (const [index, r] of results.entries()) {
    t.equal(r.status, 0, r.reason ?? r.error ?? "");
    t.same(r.outputs, { ITEM: items[index], MODE: "fast" }, `instance ${index}'s own child's outputs`);
    t.equal(started[index]?.length, 1, `instance ${index} started one child`);
    const child = await h.hub.getRun(started[index]?.[0] as string);
    t.same(child.parent, { run: parent.ref.run, node: "each", instance: index });
    t.match(child.trigger.values, { item: items[index], MODE: "fast" });
  }
  t.equal(new Set(started.flat()).size, 3, "three distinct children");
  const map = JSON.parse((await state.getValue(`children-${parent.ref.run}`)) ?? "{}") as Record<string, string>;
  t.same(map, { "each#0": started[0]?.[0], "each#1": started[1]?.[0], "each#2": started[2]?.[0] }, "every instance's child remembered");
});

t.test("a journalled child id: adopted under that id if the crash came first, re-attached to (never adopted again) if not", async (t) => {
  const h = await startHub(t, CONF);
  const newRunId = runIdFactory();
  const children = new ChildRuns({
    clustered: false,
    state: new LocalClusterState(),
    bus: h.hub.bus,
    log: pino({ level: "silent" }),
    newRunId,
    findFlow: (id, ver) => h.hub.findFlow(id, ver),
    trigger: (req) => h.hub.trigger(req),
    cancel: (run, by) => h.hub.cancel(run, by),
    summary: async (run) => h.hub.getRun(run).catch(() => undefined),
    runningHere: () => true,
    ready: Promise.resolve(),
  });
  const flow = config(CONF).flows[0];
  if (flow === undefined) throw new Error("no flow");
  const node = flow.tasks[0] as TaskNode;
  const parent: RunRecord = { v: 1, ref: makeRef("fan", 1, newRunId(), "h1"), flow, trigger: { id: "manual", type: "manual", values: {} }, adoptedAt: Date.now(), attempt: 1 };
  const lines: string[] = [];
  const call = (known: string, instance: { index: number; item: string }) =>
    children.run({ parent, node, env: [], upstream: [], instance, known, signal: AbortSignal.timeout(30_000), started: async () => undefined, line: (l) => void lines.push(l) });

  // The id was journalled, then the host died before adopting it: it is adopted under that id now.
  const chosen = newRunId();
  const first = await call(chosen, { index: 0, item: "one" });
  t.equal(first.status, 0, first.reason ?? first.error ?? "");
  t.equal((await h.hub.getRun(chosen)).result, "good", "the child has the journalled id");
  t.ok(lines.includes(`started child run ${chosen} of flow one-item (version 1)`));
  // The same id again (a restart after the adoption): its end is taken, nothing new runs.
  const again = await call(chosen, { index: 0, item: "one" });
  t.same(again.outputs, first.outputs);
  t.equal(h.hub.listRuns({ flow: "one-item" }).length, 1, "no second child");
  t.ok(lines.some((l) => l.startsWith(`re-attached to child run ${chosen}`)));
});
