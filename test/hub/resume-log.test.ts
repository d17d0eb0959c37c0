/**
 * A run resumed after its host stopped keeps its node's log numbered in order: the task that
 * runs again prints after the lines of its interrupted try, not from line 1 again (found by
 * a helper while keeping attempts' logs apart: `?after=SEQ` readers skipped the new lines).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { startHub, until } from "../helpers/hub.js";

t.test("a resumed task's new lines follow the old ones", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "floe-resume-log-"));
  const gate = join(root, "go");
  const conf = `
flows:
  - id: a
    triggers: [{name: go, type: data}]
    tasks:
      - {name: w, type: exec, listen: trigger.good, opts: {shell: 'echo one; echo two; while [ ! -f ${gate} ]; do sleep 0.05; done; echo three'}}
`;
  const first = await startHub(t, conf, { root });
  const run = (await first.hub.trigger({ flow: "a" })).ref.run;
  await until(async () => (await first.hub.readLog(run, "w")).lines.length >= 2, 20_000, "the first try's lines");
  await first.hub.stop(0);
  const again = await startHub(t, conf, { root });
  await until(async () => (await again.hub.readLog(run, "w")).lines.length >= 4, 20_000, "the second try's lines");
  writeFileSync(gate, "");
  t.equal((await again.end(run)).result, "good");
  const { lines } = await again.hub.readLog(run, "w");
  const seqs = lines.map((l) => l.seq);
  t.same(seqs, [...seqs].sort((x, y) => x - y), `numbered in order: ${seqs.join(", ")}`);
  t.equal(new Set(seqs).size, seqs.length, "no number twice");
  t.ok(lines.some((l) => l.text === "three"), "the resumed try finished");
});
