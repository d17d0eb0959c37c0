/**
 * Re-run from a node behind a merge (in-process hub, real tasks): the merge and both
 * branches before it are replayed, not run; the node gets both branches' outputs; a branch
 * beside the node (not leading to it) runs again as it would.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { evidence } from "../helpers/cluster.js";
import { startHub } from "../helpers/hub.js";

t.test("re-run from a node after a merge", async (t) => {
  const trail = join(mkdtempSync(join(tmpdir(), "floe-rerun-merge-")), "trail");
  const h = await startHub(
    t,
    `
flows:
  - id: m
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {shell: 'echo a >> ${trail}; echo "x=1" >> "$FLOE_OUTPUT"'}}
      - {name: b, type: exec, listen: trigger.good, opts: {shell: 'echo b >> ${trail}; echo "y=2" >> "$FLOE_OUTPUT"'}}
      - {name: both, class: merge, type: all, wait: [task.a.good, task.b.good]}
      - {name: c, type: exec, listen: merge.both.good, opts: {shell: 'echo "c $x $y $FLOE_OUT_A_X $FLOE_OUT_B_Y" >> ${trail}'}}
      - {name: side, type: exec, listen: task.a.good, opts: {shell: 'echo side >> ${trail}'}}
`,
  );
  const old = (await h.hub.trigger({ flow: "m" })).ref.run;
  t.equal((await h.end(old)).result, "good");
  t.same(evidence(trail).sort(), ["a", "b", "c 1 2 1 2", "side"]);
  const again = await h.hub.rerun(old, { from: "c", by: "test" });
  t.equal((await h.end(again.ref.run)).result, "good");
  t.same(evidence(trail).slice(4).sort(), ["c 1 2 1 2", "side"], "a, b and the merge replayed; c got both outputs; side (not leading to c) ran again");
  const d = await h.hub.getRun(again.ref.run);
  t.match(d.nodes.find((n) => n.id === "both"), { state: "good", waits: { "task.a.good": true, "task.b.good": true } });
});
