/**
 * Runs written in the layout before the run journal (a status file per node, DESIGN §6.4)
 * stay readable: an archived one shows its nodes and output as it ended, and one left
 * active by a killed host of that version is resumed by this one and ends, its earlier
 * records and output kept, the rest of it in the journal.
 */
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startHub } from "../helpers/hub.js";

const fixture = join(import.meta.dirname, "..", "fixtures", "old-layout");
const DONE = "01M91NBHVEJXTKZKHJ7XVZA59W";
const ACTIVE = "01M91NBJ7H3875MBSCMKHFA05M";

/** The fixture's root, copied to `root` with its paths pointing there. */
function copyRoot(root: string): void {
  cpSync(join(fixture, "floes"), join(root, "floes"), { recursive: true });
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  for (const f of walk(join(root, "floes"))) writeFileSync(f, readFileSync(f, "utf8").replaceAll("@ROOT@", root));
}

t.test("an archived run of the old layout reads back whole; an active one resumes and ends", async (t) => {
  const root = t.testdir({});
  copyRoot(root);
  const h = await startHub(t, readFileSync(join(fixture, "flows.yml"), "utf8"), { root });

  const old = await h.hub.getRun(DONE);
  t.equal(old.state, "archived");
  t.equal(old.result, "good");
  const node = (id: string) => old.nodes.find((n) => n.id === id);
  t.match(node("hello"), { state: "good", attempts: 1, exitCode: 0, logLines: 4 });
  t.match(node("quiet"), { state: "good", attempts: 1, exitCode: 0 });
  t.match(node("slow"), { state: "good", attempts: 1 });
  t.match(node("fin"), { state: "good" });
  t.same((await h.hub.readLog(DONE, "hello")).lines.filter((l) => l.stream === "out").map((l) => l.text), ["hello", "world"]);

  // Left active by the killed host: "hello" and "quiet" finished (their records in the old
  // files), "slow" was running; it runs again as a new attempt and the run ends good.
  const s = await h.end(ACTIVE);
  t.equal(s.result, "good");
  const resumed = await h.hub.getRun(ACTIVE);
  const r = (id: string) => resumed.nodes.find((n) => n.id === id);
  t.match(r("hello"), { state: "good", attempts: 1 }, "a node finished before the crash is not run again");
  t.match(r("slow"), { state: "good", attempts: 2 }, "the interrupted task ran again");
  const slowOut = (await h.hub.readLog(ACTIVE, "slow")).lines.filter((l) => l.stream === "out").map((l) => l.text);
  t.same(slowOut, ["slow-start", "slow-start", "slow-end"], "the old output first, then the new attempt's");
  const seqs = (await h.hub.readLog(ACTIVE, "slow")).lines.map((l) => l.seq);
  t.same(seqs, [...seqs].sort((a, b) => a - b), "line numbers go on from the old log's");
  t.equal(new Set(seqs).size, seqs.length, "no line number twice");
  const dir = join(root, "floes", "legacy", "1", "archive", ACTIVE);
  t.ok(existsSync(join(dir, "journal")), "what it recorded after the resume is in the journal");
  t.ok(existsSync(join(dir, "node-hello.json")), "the old files stay with the run");
});
