/** Command-line conventions: --help on every subcommand lists all its flags, --version, exit 130 on Ctrl-C. */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { until } from "../helpers/hub.js";
import { floeBin, repoRoot } from "../helpers/paths.js";

const floe = (args: string[]) => spawnSync(process.execPath, [floeBin, ...args], { encoding: "utf8", timeout: 60_000 });

/** Every flag each subcommand takes, as a user reads them in the README. */
const FLAGS: Record<string, string[]> = {
  serve: ["--conf", "--root", "--host", "--tags", "--bind", "--admin", "--slots", "--nats", "--redis", "--cluster", "--lease", "--log-level", "--log-format", "--tls-cert", "--tls-key", "--stop-grace", "--help"],
  validate: ["--strict", "--help"],
  run: ["--flow", "--set", "--root", "--keep", "--log-level", "--log-format", "--help"],
  "hash-password": ["--help"],
};

t.test("every subcommand's --help lists its flags on stdout and exits 0", async (t) => {
  for (const [cmd, flags] of Object.entries(FLAGS)) {
    for (const h of ["--help", "-h"]) {
      const r = floe([cmd, h]);
      t.equal(r.status, 0, `floe ${cmd} ${h}: ${r.stderr}`);
      t.match(r.stdout, new RegExp(`^usage: floe ${cmd}`), `floe ${cmd} ${h} starts with its usage`);
      for (const f of flags) t.match(r.stdout, new RegExp(`${f}\\b`), `floe ${cmd} ${h} lists ${f}`);
    }
  }
  const serve = floe(["serve", "--help"]).stdout;
  t.match(serve, /--bind=HOST:PORT .*default: 127\.0\.0\.1:8080/, "defaults are shown");
  t.match(serve, /env: FLOE_STOP_GRACE/, "and the variable each flag may come from");
  t.match(floe(["run", "--help"]).stdout, /env: FLOE_LOG_LEVEL/);
});

t.test("floe --help, -h and help list every command with its flags", async (t) => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const r = floe(args);
    t.equal(r.status, 0, `floe ${args.join(" ")}`);
    for (const [cmd, flags] of Object.entries(FLAGS)) {
      t.match(r.stdout, `usage: floe ${cmd}`, `floe ${args.join(" ")} shows ${cmd}`);
      for (const f of flags) t.match(r.stdout, f);
    }
  }
  const one = floe(["help", "run"]);
  t.equal(one.status, 0);
  t.match(one.stdout, /^usage: floe run/);
  t.equal(floe(["help", "nope"]).status, 2);
});

t.test("--version prints package.json's version", async (t) => {
  const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
  const r = floe(["--version"]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), version);
});

t.test("a usage error exits 2 and points at --help", async (t) => {
  const r = floe(["validate", "--nope", "x.yml"]);
  t.equal(r.status, 2);
  t.match(r.stderr, /floe validate --help/);
});

t.test("Ctrl-C on floe run cancels the run and exits 130", async (t) => {
  const dir = t.testdir({ "slow.yml": "flows:\n  - id: slow\n    tasks:\n      - {name: wait, type: exec, listen: trigger.good, opts: {shell: 'echo started; sleep 60'}}\n      - {name: fin, type: end, listen: task.wait.good}\n" });
  const child = spawn(process.execPath, [floeBin, "run", join(dir, "slow.yml"), "--root", join(dir, "root")], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  t.teardown(() => void child.kill("SIGKILL"));
  await until(() => /\[slow\.wait [0-9A-Z]{4}\] started/.test(out), 30_000, "the task to start");
  child.kill("SIGINT");
  t.equal(await exited, 130, out);
  t.match(out, /ended cancelled/);
});
