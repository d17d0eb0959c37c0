/**
 * A run waiting for a child run lends its slot: a host whose every slot holds a waiting
 * parent still runs the children. Before, one parent on a host with `--slots=1` (or two
 * started together with two slots) waited for ever, its child "waiting for a free slot".
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startHub, until } from "../helpers/hub.js";

function conf(marks: string): string {
  return `
flows:
  - id: parent
    triggers: [{id: go, type: data}]
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: middle}}
      - {id: after, type: exec, listen: task.call.good, opts: {shell: 'echo "after $FLOE_RUN_ID" >> ${marks}/log'}}
  - id: middle
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: leaf}}
  - id: leaf
    tasks:
      - {id: work, type: exec, listen: trigger.good, opts: {shell: 'echo "leaf $FLOE_RUN_ID" >> ${marks}/log; sleep 0.2'}}
  - id: fan
    triggers: [{id: go, type: data}]
    tasks:
      - {id: each, type: flow, listen: trigger.good, for-each: [a, b, c], parallel: 3, opts: {flow: leaf}}
`;
}

t.test("one slot: parents two levels deep, two of them at once, all end good", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks), { slots: 1 });
  const runs = [(await h.hub.trigger({ flow: "parent" })).ref.run, (await h.hub.trigger({ flow: "parent" })).ref.run];
  for (const run of runs) {
    const end = await h.end(run);
    t.equal(end.result, "good", end.reason ?? "");
  }
  const lines = readFileSync(join(marks, "log"), "utf8").trim().split("\n");
  t.equal(lines.filter((l) => l.startsWith("leaf ")).length, 2, "each parent's grandchild ran");
  t.same(lines.filter((l) => l.startsWith("after ")).map((l) => l.slice(6)).sort(), [...runs].sort(), "each parent went on after its child");
  t.equal(h.hub.listRuns({ flow: "middle" }).length, 2);
  // Lent slots are given back when the waits end: the host says one slot again.
  await until(async () => (await h.hub.hosts()).find((x) => x.name === "h1")?.slots === 1, 10_000, "the host's slots back to 1");
});

t.test("one slot: a for-each of child runs lends one slot, and its instances take turns in it", async (t) => {
  const marks = t.testdir({});
  const h = await startHub(t, conf(marks), { slots: 1 });
  const run = (await h.hub.trigger({ flow: "fan" })).ref.run;
  const end = await h.end(run);
  t.equal(end.result, "good", end.reason ?? "");
  const leaves = readFileSync(join(marks, "log"), "utf8").trim().split("\n");
  t.equal(leaves.length, 3, "every instance's child ran");
  await until(async () => (await h.hub.hosts()).find((x) => x.name === "h1")?.slots === 1, 10_000, "the host's slots back to 1");
});
