/** The README's "Child runs" example, run as written on a host with the deployer tag. */
import t from "tap";
import { readmeBlock } from "../readme/readme.js";
import { startHub } from "../helpers/hub.js";

t.test("the README's pipeline calls its deploy flow and gets its output", async (t) => {
  const h = await startHub(t, readmeBlock("child-runs"), { tags: ["deployer"] });
  const run = (await h.hub.trigger({ flow: "ship" })).ref.run;
  const end = await h.end(run, 30_000);
  t.equal(end.result, "good", end.reason ?? "");
  const deploy = (await h.hub.getRun(run)).nodes.find((n) => n.id === "deploy");
  t.same(deploy?.outputs, { URL: "https://staging.example/1.4.2" });
  const child = await h.hub.getRun(deploy?.child ?? "");
  t.match(child.trigger.values, { TARGET: "staging", VERSION: "1.4.2" });
  const log = await h.hub.readLog(run, "announce");
  t.ok(log.lines.some((l) => l.text === "1.4.2 is live at https://staging.example/1.4.2"), "the next task saw the child's output");
});
