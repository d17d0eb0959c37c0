/**
 * Fuzzing the YAML loader: floe's example configs and ours, mutated (lines deleted,
 * duplicated, swapped, re-indented; scalars flipped to other types; hostile strings; cuts at
 * random byte offsets; random bytes; alias bombs), fed to
 *   - the in-process loader (flows/load.ts validateFile, through validateHostConfig as serve
 *     and run use it): never a throw, never an internal error, every diagnostic names the file
 *     with a line and a column, and no config is refused without an error;
 *   - the built CLI (`floe validate`): exit 0 or 1 only, no stack trace, every stdout line a
 *     located diagnostic, and the same verdict as the in-process validator;
 *   - a live `floe serve` reloading its --conf on SIGHUP: it stays up, keeps the old flows
 *     when the new config is invalid, and logs where the config is wrong.
 * Seeded: the seed is printed; FLOE_FUZZ_SEED repeats a run. Needs `npm run build` first.
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import t, { type Test } from "tap";
import { formatDiagnostic, type Diagnostic } from "../../flows/diagnostics.js";
import { validateFile, validateHostConfig } from "../../flows/load.js";
import { startFloe } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";
import { floeBin, referenceConfigs, repoRoot } from "../helpers/paths.js";
import { fuzzRng } from "./prng.js";
import { mutate } from "./yaml-mutate.js";

const FILE = "test/fuzz/yaml.test.ts";

const seeds: { name: string; text: string }[] = [
  ...readdirSync(referenceConfigs)
    .filter((f) => f.endsWith(".yml"))
    .map((f) => ({ name: f, text: readFileSync(join(referenceConfigs, f), "utf8") })),
  ...["flows.yml", "cluster.yml"].map((f) => ({ name: `examples-${f}`, text: readFileSync(resolve(repoRoot, "flows", "examples", f), "utf8") })),
];

/** A diagnostic as `floe validate` prints it: FILE:LINE:COL: error|warning: one line of text. */
function located(line: string, file: (name: string) => boolean): boolean {
  const m = /^(.*?):(\d+):(\d+): (error|warning): (\S.*)$/.exec(line);
  return m !== null && file(m[1] ?? "") && Number(m[2]) >= 1 && Number(m[3]) >= 1 && !line.includes("\n");
}

function checkDiagnostic(d: Diagnostic, file: string, dir: string): string | undefined {
  // A config's own problems name it; a local flow-file's problems name that file (next to it).
  if (d.file !== file && !d.file.startsWith(dir)) return `names ${d.file}, not ${file}`;
  if (!Number.isInteger(d.line) || d.line < 1 || !Number.isInteger(d.col) || d.col < 1) return `bad place ${d.line}:${d.col}`;
  if (/internal error/i.test(d.message)) return `internal error: ${d.message}`;
  if (!located(formatDiagnostic(d), (name) => name === d.file)) return `not one located line: ${JSON.stringify(formatDiagnostic(d))}`;
  return undefined;
}

interface Case {
  readonly path: string;
  readonly applied: string[];
  readonly from: string;
}

/** Writes `n` mutated configs into `dir` (beside floe.yml, which config.yml names as its flow-file). */
function makeCases(t: Test, dir: string, n: number, salt: number): Case[] {
  const rng = fuzzRng(t, FILE, salt);
  copyFileSync(join(referenceConfigs, "floe.yml"), join(dir, "floe.yml"));
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const from = rng.pick(seeds);
    const { bytes, applied } = mutate(from.text, rng);
    const path = join(dir, `m-${String(i).padStart(4, "0")}.yml`);
    writeFileSync(path, bytes);
    cases.push({ path, applied, from: from.name });
  }
  return cases;
}

t.test("in-process validator: never throws, every diagnostic located", async (t) => {
  const dir = t.testdir({});
  const cases = makeCases(t, dir, 600, 1);
  let invalid = 0;
  for (const c of cases) {
    let res: { config?: unknown; diagnostics: Diagnostic[] };
    try {
      // What serve and run load: a config, or errors saying why not (a flow-file alone included).
      res = await validateHostConfig(c.path);
    } catch (e) {
      t.fail(`${c.path} (${c.from}: ${c.applied.join(", ")}) threw: ${e instanceof Error ? e.stack : String(e)}`);
      continue;
    }
    const bad = res.diagnostics.map((d) => checkDiagnostic(d, c.path, dir)).filter((x) => x !== undefined);
    if (bad.length > 0) t.fail(`${c.path} (${c.from}: ${c.applied.join(", ")}): ${bad.join("; ")}`);
    const errors = res.diagnostics.filter((d) => d.severity === "error").length;
    if ((res.config === undefined) !== errors > 0) t.fail(`${c.path}: a config ${res.config === undefined ? "refused without" : "accepted with"} an error`);
    if (errors > 0) invalid++;
  }
  t.comment(`${cases.length} mutated files, ${invalid} invalid`);
  t.ok(invalid > cases.length / 4, "most mutations break the file (the fuzzer is doing something)");
});

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[]): Promise<CliRun> {
  return new Promise((done, fail) => {
    const env = { ...process.env };
    delete env["NODE_OPTIONS"]; // as a user runs it, without tap's loaders
    const child = spawn(process.execPath, [floeBin, "validate", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    // Far beyond what a validation takes; only a hang gets here, and then it fails the check.
    const timer = setTimeout(() => child.kill("SIGKILL"), 50_000);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

t.test("floe validate (the built CLI): exit 0 or 1, no stack trace, located lines, the same verdict", async (t) => {
  const dir = t.testdir({});
  const cases = makeCases(t, dir, 160, 2);
  // Batches: one process per file would spend the time budget on Node start-ups.
  const batches: Case[][] = [];
  for (let i = 0; i < cases.length; i += 40) batches.push(cases.slice(i, i + 40));
  // And a few alone, so each exit code is checked against its own file's verdict.
  for (const c of cases.slice(0, 6)) batches.push([c]);
  for (const batch of batches) {
    const files = batch.map((c) => c.path);
    const r = await cli(files);
    const what = `${files.length === 1 ? files[0] : `${files.length} files`}`;
    t.ok(r.code === 0 || r.code === 1, `${what}: exit ${r.code}`);
    t.notMatch(r.stdout + r.stderr, /^\s+at .+[(:]\d+/m, `${what}: no stack trace`);
    t.notMatch(r.stdout + r.stderr, /internal error/i, `${what}: no internal error`);
    const outLines = r.stdout.split("\n").filter((l) => l !== "");
    // The configs' own files, or a local flow-file beside them.
    const strays = outLines.filter((l) => !located(l, (name) => files.includes(name) || name.startsWith(`${dir}/`)));
    t.same(strays, [], `${what}: every line names a file, a line and a column`);
    let anyInvalid = false;
    for (const c of batch) {
      const summary = r.stderr.split("\n").find((l) => l.startsWith(`${c.path}: `));
      const expected = (await validateFile(c.path)).diagnostics.some((d) => d.severity === "error");
      anyInvalid ||= expected;
      if (summary === undefined || summary.startsWith(`${c.path}: ${expected ? "invalid" : "valid"} `) === false) t.fail(`${c.path} (${c.applied.join(", ")}): CLI says ${JSON.stringify(summary)}, the loader ${expected ? "invalid" : "valid"}`);
    }
    t.equal(r.code, anyInvalid ? 1 : 0, `${what}: exit code follows the verdict`);
  }
});

t.test("a live host on SIGHUP: stays up, keeps the old config when the new one is invalid, says where", async (t) => {
  const rng = fuzzRng(t, FILE, 3);
  const dir = t.testdir({});
  const conf = join(dir, "flows.yml");
  const original = readFileSync(resolve(repoRoot, "flows", "examples", "flows.yml"), "utf8");
  writeFileSync(conf, original);
  mkdirSync(join(dir, "root"));
  const f = await startFloe({ conf, root: join(dir, "root"), extra: ["--log-level=info"] });
  t.teardown(() => f.kill9());
  const flowIds = async (): Promise<string[]> => {
    const r = await f.req("GET", "/flows");
    t.equal(r.status, 200, "GET /flows answers");
    return ((r.body as { flows: { id: string; ver: number }[] }).flows ?? []).map((x) => `${x.id}@${x.ver}`).sort();
  };
  let current = await flowIds();
  t.ok(current.length > 0, "serving the example flows");
  let refused = 0;
  for (let i = 0; i < 12; i++) {
    // Every third reload is a valid config again, so "keeps the old config" is checked against different old ones.
    const { bytes, applied } = i % 3 === 2 ? { bytes: Buffer.from(original.replace(/^flows:\n/m, `flows:\n  - {id: extra-${i}, tasks: [{name: e, type: end, listen: trigger.good}], triggers: [{name: go, type: data}]}\n`)), applied: ["valid"] } : mutate(original, rng);
    writeFileSync(conf, bytes);
    const expected = await validateHostConfig(conf);
    const mark = f.output().length;
    f.child.kill("SIGHUP");
    await until(() => /config reloaded|reload refused/.test(f.output().slice(mark)), 30_000, `reload ${i} (${applied.join(", ")}) to be handled`);
    const said = f.output().slice(mark);
    t.equal((await fetch(`${f.api}/healthz`)).status, 200, `reload ${i}: the host still answers`);
    t.equal(f.child.exitCode, null, `reload ${i}: the host is still running`);
    if (expected.config === undefined) {
      refused++;
      t.match(said, /reload refused/, `reload ${i} (${applied.join(", ")}): refused`);
      const errLines = said.split("\n").filter((l) => l.startsWith(`${conf}:`) || l.startsWith(`${dir}/`));
      t.ok(errLines.some((l) => /^.+:\d+:\d+: error: \S/.test(l)), `reload ${i}: a located error is logged`);
      t.notMatch(said, /^\s+at .+[(:]\d+/m, `reload ${i}: no stack trace`);
      t.same(await flowIds(), current, `reload ${i}: the old flows are still served`);
    } else {
      t.match(said, /config reloaded/, `reload ${i} (${applied.join(", ")}): accepted`);
      current = expected.config.flows.map((x) => `${x.id}@${x.ver}`).sort();
      t.same(await flowIds(), current, `reload ${i}: the new flows are served`);
    }
  }
  t.ok(refused > 0, "some reloads were refused");
});
