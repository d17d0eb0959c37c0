/**
 * `floe run` of a flow that reaches a data node: input from --set NODE.FIELD=value or from
 * prompts on a terminal; without either it ends, cancelled, saying what to give, exit 1,
 * nothing left active. The temporary root it made is removed (kept with --keep).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { parseCommand } from "../../cmd/flags.js";
import { RUN } from "../../cmd/commands.js";
import { runCommand } from "../../cmd/run.js";
import { floeBin, repoRoot } from "../helpers/paths.js";

const examples = join(repoRoot, "flows", "examples", "flows.yml");

function floeRun(args: string[], tmp: string) {
  return spawnSync(process.execPath, [floeBin, "run", examples, "--flow", "release", ...args], { encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TMPDIR: tmp } });
}

const dirs = (d: string, prefix: string) => readdirSync(d).filter((n) => n.startsWith(prefix));

t.test("without a terminal and without --set, the run ends saying which input it needs; nothing is left active", async (t) => {
  const tmp = t.testdir({});
  const root = join(tmp, "root");
  const r = floeRun(["--root", root], tmp);
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, "run needs input at node approve (fields: approver; optional: notes); give them with --set approve.FIELD=value");
  t.match(r.stderr, /ended cancelled/);
  const active = join(root, "floes", "release", "1", "active");
  t.same(existsSync(active) ? readdirSync(active) : [], [], "no run left under active/");
  t.equal(readdirSync(join(root, "floes", "release", "1", "archive")).length, 1);
});

t.test("--set approve.FIELD=value gives a data node its input", async (t) => {
  const tmp = t.testdir({});
  const r = floeRun(["--set", "approve.approver=Ada"], tmp);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /\[release\.deploy [0-9A-Z]{4}\] deploying 1\.0\.0, approved by Ada/);
  t.match(r.stderr, /ended good/);
  t.same(dirs(tmp, "floe-run-"), [], "the temporary root is removed");
  const bad = floeRun(["--set", "approve.nope=1"], tmp);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /the form has no field "nope"/, "values are checked as the API checks them");
});

t.test("--keep keeps the temporary root and says where", async (t) => {
  const tmp = t.testdir({});
  const r = floeRun(["--set", "approve.approver=Ada", "--keep"], tmp);
  t.equal(r.status, 0, r.stderr);
  const kept = dirs(tmp, "floe-run-");
  t.equal(kept.length, 1);
  t.match(r.stderr, `kept the run's files in ${join(tmp, kept[0] ?? "")}`);
});

t.test("on a terminal, the fields are asked for; a required one until it is given", async (t) => {
  const root = t.testdir({});
  const asked: string[] = [];
  const answers = ["", "first release", "Grace"];
  const lines: string[] = [];
  const code = await runCommand(
    parseCommand(RUN, [examples, "--flow", "release", "--root", root], {}),
    { out: (l) => lines.push(l), err: (l) => lines.push(l) },
    new AbortController().signal,
    async (q) => {
      asked.push(q);
      return answers.shift() ?? "";
    },
  );
  t.equal(code, 0, lines.join("\n"));
  t.match(asked, [/^Your name: $/, /^Release notes \(optional\): $/, /^Your name: $/]);
  t.ok(lines.some((l) => /\[release\.deploy [0-9A-Z]{4}\] deploying 1\.0\.0, approved by Grace$/.test(l)));
});
