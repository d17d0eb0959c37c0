/** The dispatcher's rule (pure) and resource serialisation with real processes. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { decide, type PendView } from "../../hub/dispatch.js";
import { startHub, until } from "../helpers/hub.js";

const pend = (run: string, o: Partial<PendView> = {}): PendView => ({ run, flowKey: o.flowKey ?? "f/1", hostTags: o.hostTags ?? [], resources: o.resources ?? [], ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}) });

t.test("decide: tags, slots, resources, FIFO per resource, no head-of-line blocking", async (t) => {
  const hosts = [
    { name: "h1", tags: ["linux"], freeSlots: 1 },
    { name: "h2", tags: ["linux", "gpu"], freeSlots: 2 },
  ];
  const d = decide({
    pends: [pend("a", { hostTags: ["arm"] }), pend("b", { resources: ["db"] }), pend("c", { resources: ["db"] }), pend("d", { hostTags: ["gpu"] }), pend("e"), pend("f")],
    hosts,
    held: new Map(),
    activeByFlow: new Map(),
  });
  t.same(d.assign, [
    { run: "b", host: "h2" },
    { run: "d", host: "h2" },
    { run: "e", host: "h1" },
  ]);
  t.equal(d.waiting.get("a"), "no live host has tags [arm]");
  t.match(d.waiting.get("c"), /waiting for resource "db" held by run b/);
  t.match(d.waiting.get("f"), /no free slot on any live host/);
});

t.test("decide: a pend blocked on a resource keeps its place; others pass", async (t) => {
  const d = decide({
    pends: [pend("x", { resources: ["db", "cache"] }), pend("y", { resources: ["cache"] }), pend("z", { resources: ["other"] })],
    hosts: [{ name: "h", tags: [], freeSlots: 5 }],
    held: new Map([["db", "old"]]),
    activeByFlow: new Map(),
  });
  t.same(d.assign, [{ run: "z", host: "h" }]);
  t.match(d.waiting.get("y"), /waiting for resource "cache", after run x/);
});

t.test("decide: flow concurrency and the reused workspace", async (t) => {
  const d = decide({
    pends: [pend("a", { concurrency: 1 }), pend("b", { concurrency: 1 }), pend("c", { flowKey: "g/1", resources: ["reuse-space:g"] }), pend("d", { flowKey: "g/1", resources: ["reuse-space:g"] })],
    hosts: [{ name: "h", tags: [], freeSlots: 9 }],
    held: new Map(),
    activeByFlow: new Map(),
  });
  t.same(d.assign.map((a) => a.run), ["a", "c"]);
  t.equal(d.waiting.get("b"), "flow concurrency limit 1 reached");
  t.match(d.waiting.get("d"), /the reused workspace of g/);
});

t.test("decide: parking for a slot, and the heads of tag sets parked for one", async (t) => {
  const full = decide({
    pends: [pend("a", { hostTags: ["gpu"] }), pend("b", { hostTags: ["gpu"], resources: ["db"] }), pend("c")],
    hosts: [
      { name: "h1", tags: ["linux"], freeSlots: 1 },
      { name: "h2", tags: ["linux", "gpu"], freeSlots: 0 },
    ],
    held: new Map(),
    activeByFlow: new Map(),
    parkedForSlots: [["linux"], ["gpu"]],
  });
  t.same(full.assign, [{ run: "c", host: "h1" }]);
  t.same(full.park, [{ run: "a", on: { kind: "slots" } }], "every gpu host was full before the decision: a is parked for a slot; b needs a resource: it stays");
  t.same(full.slotHeads, [{ hostTags: ["linux"], before: "c" }], "linux hosts: none has a slot left, h1 gave one to c; gpu hosts: full, gave none");

  const filled = decide({
    pends: [pend("x"), pend("y")],
    hosts: [{ name: "h", tags: [], freeSlots: 1 }],
    held: new Map(),
    activeByFlow: new Map(),
    parkedForSlots: [[]],
  });
  t.same(filled.park, [], "full only because of this decision's own assignment: not parked (its claim may fail)");
  t.same(filled.slotHeads, [{ hostTags: [], before: "x" }]);

  const two = decide({ pends: [pend("x"), pend("y")], hosts: [{ name: "h", tags: [], freeSlots: 3 }], held: new Map(), activeByFlow: new Map(), parkedForSlots: [[]] });
  t.same(two.slotHeads, [{ hostTags: [] }], "a slot left over: the head comes back whatever its age");

  const younger = decide({ pends: [pend("x"), pend("y")], hosts: [{ name: "h", tags: [], freeSlots: 2 }], held: new Map(), activeByFlow: new Map(), parkedForSlots: [[]] });
  t.same(younger.slotHeads, [{ hostTags: [], before: "y" }], "the youngest pend given a slot: a head older than it would have had that slot");

  const herd = decide({ pends: [pend("x")], hosts: [{ name: "h", tags: [], freeSlots: 0 }], held: new Map(), activeByFlow: new Map(), forHost: "h", parkedForSlots: [[]] });
  t.same([herd.park, herd.slotHeads], [[], []], "a decision for one host alone parks nothing for a slot");
});

t.test("10 runs sharing a resource tag never overlap; other tags are not held back", async (t) => {
  const dir = t.testdir({});
  const log = join(dir, "spans.log");
  const h = await startHub(
    t,
    `
flows:
  - id: locked
    resource-tags: [db]
    triggers: [{name: go, type: data}]
    tasks:
      - name: hold
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "start $FLOE_RUN_ID $(date +%s%N)" >> ${log}; sleep 0.15; echo "end $FLOE_RUN_ID $(date +%s%N)" >> ${log}'}
  - id: free
    resource-tags: [other]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: quick, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`,
    { slots: 8 },
  );
  const locked = [];
  for (let i = 0; i < 10; i++) locked.push(await h.hub.trigger({ flow: "locked" }));
  const free = await h.hub.trigger({ flow: "free" });
  const freeEnd = await h.end(free.ref.run);
  t.equal(freeEnd.result, "good");
  const stillLocked = h.hub.listRuns({ flow: "locked", state: "pending" });
  t.ok(stillLocked.length > 0, `the free run finished while ${stillLocked.length} locked runs still waited`);
  t.match(stillLocked[0]?.waiting, /resource "db"/, "a waiting run says why");
  for (const r of locked) t.equal((await h.end(r.ref.run)).result, "good");
  const spans = new Map<string, { start: bigint; end: bigint }>();
  for (const line of readFileSync(log, "utf8").trim().split("\n")) {
    const [kind, run, ns] = line.split(" ");
    const s = spans.get(run as string) ?? { start: 0n, end: 0n };
    if (kind === "start") s.start = BigInt(ns as string);
    else s.end = BigInt(ns as string);
    spans.set(run as string, s);
  }
  t.equal(spans.size, 10);
  const sorted = [...spans.entries()].sort((a, b) => (a[1].start < b[1].start ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]?.[1];
    const cur = sorted[i]?.[1];
    t.ok(prev !== undefined && cur !== undefined && prev.end <= cur.start, `run ${i} started after run ${i - 1} ended`);
  }
  t.same(sorted.map(([run]) => run), locked.map((r) => r.ref.run), "first adopted, first run");
});

t.test("a pend nobody can run waits with its reason; queue-limit and queue-strategy", async (t) => {
  const h = await startHub(
    t,
    `
flows:
  - id: gpu
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks: [{name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
  - id: capped
    host-tags: [gpu]
    queue-limit: 2
    triggers: [{name: go, type: data}]
    tasks: [{name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
  - id: replaced
    host-tags: [gpu]
    queue-limit: 1
    queue-strategy: replace
    triggers: [{name: go, type: data}]
    tasks: [{name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}]
`,
    { tags: ["linux"] },
  );
  const r = await h.hub.trigger({ flow: "gpu" });
  await until(() => h.hub.listRuns({ flow: "gpu" })[0]?.waiting !== undefined, 5000, "a reason");
  t.equal(h.hub.listRuns({ flow: "gpu" })[0]?.waiting, "no live host has tags [gpu]");
  t.equal((await h.hub.getRun(r.ref.run)).state, "pending");
  await h.hub.trigger({ flow: "capped" });
  await h.hub.trigger({ flow: "capped" });
  await t.rejects(h.hub.trigger({ flow: "capped" }), { code: "E_QUEUE_FULL" });
  const first = await h.hub.trigger({ flow: "replaced" });
  const second = await h.hub.trigger({ flow: "replaced" });
  const old = await h.end(first.ref.run, 5000);
  t.same([old.result, old.reason], ["cancelled", "replaced by a newer trigger (queue-strategy: replace)"]);
  t.equal((await h.hub.getRun(second.ref.run)).state, "pending");
});
