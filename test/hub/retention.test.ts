/**
 * Retention (`common.retention.runs`): the last N archived runs of a flow version are kept,
 * older ones leave the index at once and their run directory and workspace leave the disk
 * (in a batch, off the host's event loop: hub/batch-remover.ts).
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startHub, until } from "../helpers/hub.js";

const dirs = (p: string): string[] => (existsSync(p) ? readdirSync(p).filter((n) => !n.startsWith(".")).sort() : []);

t.test("only the last N archived runs and their workspaces are kept", async (t) => {
  const h = await startHub(
    t,
    `
common: {retention: {runs: 2}}
flows:
  - id: keep
    triggers: [{name: go, type: data}]
    tasks:
      - {name: w, type: exec, listen: trigger.good, opts: {shell: 'echo x > "$FLOEWS/f"'}}
      - {name: e, type: end, listen: task.w.good}
`,
  );
  const runs: string[] = [];
  for (let i = 0; i < 5; i++) {
    const run = (await h.hub.trigger({ flow: "keep" })).ref.run;
    t.equal((await h.end(run)).result, "good");
    runs.push(run);
  }
  const kept = runs.slice(-2).sort();
  t.same(h.hub.listRuns({ flow: "keep" }).map((r) => r.ref.run).sort(), kept, "the index keeps the last two at once");
  const archive = join(h.root, "floes", "keep", "1", "archive");
  const spaces = join(h.root, "spaces", "keep");
  await until(() => dirs(archive).length === 2 && dirs(spaces).length === 2, 20_000, "the pruned runs' files to go");
  t.same(dirs(archive), kept, "archive/ holds the two kept runs");
  t.same(dirs(spaces), kept, "so does spaces/");
});

t.test("a stopping hub removes what it pruned before it is stopped", async (t) => {
  const h = await startHub(
    t,
    `
common: {retention: {runs: 1}}
flows:
  - id: keep
    triggers: [{name: go, type: data}]
    tasks:
      - {name: e, type: end, listen: trigger.good}
`,
  );
  for (let i = 0; i < 3; i++) await h.end((await h.hub.trigger({ flow: "keep" })).ref.run);
  await h.hub.stop();
  t.equal(dirs(join(h.root, "floes", "keep", "1", "archive")).length, 1, "one run left on disk when stop resolves");
});
