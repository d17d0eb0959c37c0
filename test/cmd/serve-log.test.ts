/**
 * What `floe serve` prints on stderr: the start-up line (tags only when the host has some),
 * and its own log as JSON lines or, for people, one pretty line per entry (--log-format,
 * FLOE_LOG_FORMAT; auto: pretty on a terminal only).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { startFloe } from "../helpers/floe-process.js";
import { floeBin } from "../helpers/paths.js";

const FLOW = "flows:\n  - id: hello\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: say, type: exec, listen: trigger.good, opts: {cmd: \"echo hi\"}}\n";
const STOPPING = "stopping: no new work; waiting for active runs";

t.test("a host without tags says nothing of them; FLOE_LOG_FORMAT=pretty: a line per entry for people", async (t) => {
  const dir = t.testdir({ "flows.yml": FLOW });
  const f = await startFloe({ conf: join(dir, "flows.yml"), root: join(dir, "root"), extra: ["--log-level=info"], env: { FLOE_LOG_FORMAT: "pretty", NO_COLOR: "1" } });
  t.teardown(() => f.kill9());
  t.match(f.output(), /^floe: host h1 serving 1 flow\(s\) at /m, "no [] for a host without tags");
  t.equal(await f.stop(), 0);
  const lines = f.output().split("\n");
  t.ok(lines.some((l) => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z INFO  ${STOPPING} graceS=2$`).test(l)), `a pretty line:\n${f.output()}`);
  t.notOk(lines.some((l) => l.startsWith("{")), "no JSON");
  t.notOk(f.output().includes("\x1b["), "no colours: stderr is not a terminal (and NO_COLOR)");
});

t.test("with tags, they are named; the log is JSON when stderr is not a terminal, and with --log-format=json", async (t) => {
  const dir = t.testdir({ "flows.yml": FLOW });
  for (const extra of [[], ["--log-format=json"]]) {
    const f = await startFloe({ conf: join(dir, "flows.yml"), root: join(dir, "root"), tags: ["linux", "go"], extra: ["--log-level=info", ...extra] });
    t.teardown(() => f.kill9());
    t.match(f.output(), /^floe: host h1 \[linux, go\] serving 1 flow\(s\) at /m);
    t.equal(await f.stop(), 0);
    const json = f.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as unknown);
    t.ok(json.length > 0, "JSON lines");
    t.ok(json.some((x) => typeof x === "object" && x !== null && "msg" in x && x.msg === STOPPING), `${extra.join(" ") || "auto"}: the stop logged as JSON`);
  }
});

t.test("an unknown --log-format is a usage error", async (t) => {
  const dir = t.testdir({});
  const r = spawnSync(process.execPath, [floeBin, "serve", `--root=${join(dir, "root")}`, "--log-format=xml"], { encoding: "utf8", timeout: 30_000 });
  t.equal(r.status, 2);
  t.match(r.stderr, /--log-format=xml: expected auto, json, pretty/);
});
