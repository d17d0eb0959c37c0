/** The `floe` command: run, serve's signals (SIGHUP reload, graceful SIGTERM), usage errors. */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";
import { floeBin, repoRoot } from "../helpers/paths.js";

const floe = (args: string[], input?: string) => spawnSync(process.execPath, [floeBin, ...args], { encoding: "utf8", timeout: 60_000, ...(input !== undefined ? { input } : {}) });

t.test("floe run: streams lines, exit 0 when good, 1 when bad, 2 on usage errors", async (t) => {
  const examples = join(repoRoot, "flows", "examples", "flows.yml");
  const ok = floe(["run", examples, "--flow", "greet", "--set", "name=Ada", "--set", "times=2", "--set", "shout=true"]);
  t.equal(ok.status, 0, ok.stderr);
  const run = /run ([0-9A-Z]{26}) ended good/.exec(ok.stderr)?.[1] ?? "";
  t.not(run, "", "the run's id is printed");
  // The short run id (the ULID's last 4 characters) tells apart the lines of two runs of one flow.
  const lines = ok.stdout.trim().split("\n").filter((l) => l.includes(`[greet.hello ${run.slice(-4)}]`) && !l.includes("in dir:"));
  t.match(lines.at(-1), new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z \\[greet\\.hello ${run.slice(-4)}\\] HELLO, ADA!$`));
  t.equal(ok.stdout.split("\n").filter((l) => l.endsWith("HELLO, ADA!")).length, 2);
  t.match(ok.stderr, /ended good/);
  const dir = t.testdir({ "bad.yml": "flows:\n  - id: b\n    tasks:\n      - {name: x, type: exec, listen: trigger.good, opts: {cmd: \"false\"}}\n" });
  const bad = floe(["run", join(dir, "bad.yml")]);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /ended bad: task\.x\.bad has no listener/);
  t.equal(floe(["run"]).status, 2);
  t.equal(floe(["run", examples]).status, 2, "several flows and no --flow");
  t.equal(floe(["run", examples, "--flow", "nope"]).status, 2);
  t.equal(floe(["bogus"]).status, 2);
  t.equal(floe(["serve", "--slots=0"]).status, 2, "a bad flag value");
  const invalid = floe(["run", join(dir, "missing.yml")]);
  t.equal(invalid.status, 1);
  t.match(invalid.stderr, /missing\.yml:1:1: error: can not read the file: .*ENOENT/);
});

t.test("floe hash-password prints a hash that floe accepts", async (t) => {
  const r = floe(["hash-password"], "correct horse battery\n");
  t.equal(r.status, 0);
  t.match(r.stdout.trim(), /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  t.equal(floe(["hash-password"], "short\n").status, 2);
});

t.test("serve: SIGHUP reloads (runs keep their version), a bad config is refused, SIGTERM stops gracefully", async (t) => {
  const dir = t.testdir({});
  const conf = join(dir, "flows.yml");
  const v1 = `
flows:
  - id: app
    triggers: [{name: go, type: data}]
    tasks:
      - {name: step, type: exec, listen: trigger.good, opts: {shell: 'while [ ! -f ${dir}/release ]; do sleep 0.05; done; echo version-one'}}
`;
  writeFileSync(conf, v1);
  const f = await startFloe({ conf, root: join(dir, "root") });
  t.teardown(() => f.kill9().catch(() => undefined));
  const r1 = ((await f.req("POST", "/flows/app/runs", {})).body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await f.req("GET", `/runs/${r1}`)).body as { state: string }).state === "active", 20_000, "active");
  writeFileSync(conf, v1.replace("version-one", "version-two") + "  - id: extra\n    triggers: [{name: go, type: data}]\n    tasks: [{name: a, type: exec, listen: trigger.good, opts: {cmd: \"true\"}}]\n");
  f.child.kill("SIGHUP");
  await until(async () => ((await f.req("GET", "/flows")).body as { flows: { id: string }[] }).flows.some((x) => x.id === "extra"), 20_000, "the reloaded config");
  writeFileSync(conf, "flows: [\n");
  f.child.kill("SIGHUP");
  await until(() => /reload refused/.test(f.output()), 20_000, "a refused reload");
  t.equal(((await f.req("GET", "/flows")).body as { flows: unknown[] }).flows.length, 2, "the old config stays");
  writeFileSync(join(dir, "release"), "");
  await until(async () => ((await f.req("GET", `/runs/${r1}`)).body as { state: string }).state === "archived", 20_000, "r1 to end");
  const out1 = ((await f.req("GET", `/runs/${r1}/nodes/step/log`)).body as { lines: { text: string }[] }).lines.map((l) => l.text);
  t.ok(out1.includes("version-one"), "the running run kept the flow it started with");
  const r2 = ((await f.req("POST", "/flows/app/runs", {})).body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await f.req("GET", `/runs/${r2}`)).body as { state: string }).state === "archived", 20_000, "r2 to end");
  t.ok(((await f.req("GET", `/runs/${r2}/nodes/step/log`)).body as { lines: { text: string }[] }).lines.some((l) => l.text === "version-two"), "a new run uses the new config");
  t.match(readFileSync(join(dir, "root", "floes", "app", "1", "flow.yml"), "utf8"), /version-two/, "flow.yml holds the definition runs use");
  const code = await f.stop();
  t.equal(code, 0, "SIGTERM: a clean exit");
});
