/**
 * `floe serve` without --conf: config.yml of the working directory, as the original floe
 * read it; without one, a host with no flows of its own (it still executes runs other
 * hosts of its cluster adopted), which says so.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startFloe } from "../helpers/floe-process.js";

const FLOW = "flows:\n  - id: hello\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: say, type: exec, listen: trigger.good, opts: {cmd: \"echo hi\"}}\n      - {name: fin, type: end, listen: task.say.good}\n";

t.test("without --conf, config.yml of the working directory is the config", async (t) => {
  const dir = t.testdir({ "config.yml": FLOW });
  const f = await startFloe({ conf: undefined, cwd: dir, root: join(dir, "root"), tags: ["linux", "go"] });
  t.teardown(() => f.kill9());
  const flows = (await f.req("GET", "/flows")).body as { flows: { id: string }[] };
  t.same(flows.flows.map((x) => x.id), ["hello"]);
  t.equal(await f.stop(), 0);
});

t.test("without --conf and without config.yml, a host with no flows of its own starts and says so", async (t) => {
  const dir = t.testdir({});
  const f = await startFloe({ conf: undefined, cwd: dir, root: join(dir, "root"), tags: ["linux", "go"] });
  t.teardown(() => f.kill9());
  t.match(f.output(), /no config file: this host has no flows of its own/);
  t.match(f.output(), /serving 0 flow\(s\)/);
  const flows = (await f.req("GET", "/flows")).body as { flows: unknown[] };
  t.same(flows.flows, []);
  t.equal((await f.req("GET", "/hosts")).status, 200);
  writeFileSync(join(dir, "config.yml"), FLOW);
  t.equal(await f.stop(), 0, "a clean stop");
});

t.test("an explicit --conf that does not exist is still an error", async (t) => {
  const dir = t.testdir({});
  await t.rejects(startFloe({ conf: join(dir, "nope.yml"), cwd: dir, root: join(dir, "root") }), /nope\.yml:1:1: error: can not read the file/);
});
