/**
 * `floe validate` as a user runs it: the built CLI in a child process, over a corpus of
 * broken flow files (test/fixtures/broken, one mistake each, expectations in expected.json),
 * floe's own example configs, and hostile input generated here. Needs `npm run build` first.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import t from "tap";
import type { Test } from "tap";
import { floeBin, referenceConfigs, repoRoot } from "../helpers/paths.js";

const fixtures = resolve(repoRoot, "test", "fixtures", "broken");

interface Expectation {
  /** Flags before the file name, e.g. ["--strict"]. */
  readonly args?: readonly string[];
  readonly exit: number;
  /** Every line of stdout, in order. */
  readonly lines: readonly string[];
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `floe validate ARGS` in `cwd`; kills it (and fails the check) after `limitMs`. */
function validate(args: readonly string[], cwd: string, limitMs = 60_000): Promise<Run> {
  return new Promise((done, fail) => {
    // As a user runs it: without the loaders tap puts into NODE_OPTIONS for its own children.
    const env = { ...process.env };
    delete env["NODE_OPTIONS"];
    const child = spawn(process.execPath, [floeBin, "validate", ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** A line of a JS stack trace, in either stream. */
const STACK_FRAME = /^\s+at .+[(:]\d+/m;
const DIAGNOSTIC = (file: string): RegExp => new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: (error|warning): \\S[^\\n]*$`);

function noStackTrace(t: Test, r: Run): void {
  t.notMatch(r.stdout, STACK_FRAME, "no stack trace on stdout");
  t.notMatch(r.stderr, STACK_FRAME, "no stack trace on stderr");
}

/** Maps `items` through `f`, at most `width` at a time, keeping their order. */
async function inPool<T, R>(items: readonly T[], width: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await f(items[i] as T);
  };
  await Promise.all(Array.from({ length: width }, worker));
  return out;
}

/** A small seeded generator (mulberry32), so the "random" bytes are the same on every run. */
function seededBytes(seed: number, n: number): Buffer {
  let a = seed >>> 0;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    out[i] = ((x ^ (x >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

if (!existsSync(floeBin)) {
  t.fail(`${floeBin} is missing: build first (npm run build, or npx tsc -p .)`);
} else {
  const expected = JSON.parse(readFileSync(join(fixtures, "expected.json"), "utf8")) as Record<string, Expectation>;

  t.test("every fixture has an expectation, and there are enough of them", async (t) => {
    const files = readdirSync(fixtures).filter((f) => f.endsWith(".yml")).sort();
    t.same(files, Object.keys(expected).sort(), "expected.json names exactly the .yml files of test/fixtures/broken");
    t.ok(files.length >= 30, `${files.length} fixtures`);
    t.ok(Object.values(expected).some((e) => e.exit === 0 && e.lines.length > 0), "a valid file with warnings");
    t.ok(Object.values(expected).some((e) => e.exit === 0 && e.lines.length === 0), "a valid file without warnings");
  });

  t.test("broken fixtures: exact lines and exit code", async (t) => {
    const cases = Object.entries(expected);
    const runs = await inPool(cases, 4, ([file, want]) => validate([...(want.args ?? []), file], fixtures));
    cases.forEach(([file, want], i) => {
      const r = runs[i];
      if (r === undefined) return;
      t.same(lines(r.stdout), want.lines, `${file}: stdout`);
      t.equal(r.code, want.exit, `${file}: exit code`);
      noStackTrace(t, r);
    });
  });

  t.test("several files at once: every problem of every file, exit 1", async (t) => {
    const files = ["06-wrong-type-ver.yml", "14-unknown-key-did-you-mean.yml", "16-duplicate-node-id.yml"];
    const r = await validate(files, fixtures);
    t.same(lines(r.stdout), files.flatMap((f) => expected[f]?.lines ?? [`(no expectation for ${f})`]));
    t.equal(r.code, 1);
  });

  t.test("--strict: warnings become errors; a file without warnings still passes", async (t) => {
    const warned = await validate(["--strict", "48-valid-with-warnings.yml"], fixtures);
    t.same(
      lines(warned.stdout),
      (expected["48-valid-with-warnings.yml"]?.lines ?? []).map((l) => l.replace(": warning: ", ": error: ")),
    );
    t.equal(warned.code, 1);
    const clean = await validate(["--strict", "47-valid-anchors-and-use-status.yml"], fixtures);
    t.equal(clean.stdout, "");
    t.equal(clean.code, 0);
  });

  t.test("usage errors exit 2", async (t) => {
    const none = await validate([], fixtures);
    t.equal(none.code, 2, "no files");
    t.equal(none.stdout, "");
    t.match(none.stderr, /usage: floe validate \[--strict\] FILE\.\.\./);
    const flag = await validate(["--bogus", "06-wrong-type-ver.yml"], fixtures);
    t.equal(flag.code, 2, "unknown flag");
    t.equal(flag.stdout, "");
    t.match(flag.stderr, /--bogus/);
    noStackTrace(t, none);
    noStackTrace(t, flag);
  });

  t.test("a missing file and a directory are problems of that file, exit 1", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "floe-validate-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, "flows.d"));
    const r = await validate(["no-such-file.yml", "flows.d"], dir);
    t.same(lines(r.stdout), ["no-such-file.yml:1:1: error: can not read the file: no such file (ENOENT)", "flows.d:1:1: error: is a directory, not a flow file"]);
    t.equal(r.code, 1);
    noStackTrace(t, r);
  });

  t.test("floe's own example configs validate", async (t) => {
    const files = readdirSync(referenceConfigs).filter((f) => f.endsWith(".yml")).sort();
    t.ok(files.length > 0, `configs found in ${referenceConfigs}`);
    // One run for all: exit 0 only when every file is valid.
    const r = await validate(files, referenceConfigs);
    t.same(lines(r.stdout).filter((l) => !/^[^:]+:\d+:\d+: warning: /.test(l)), [], "warnings only");
    t.equal(r.code, 0, `exit 0 for ${files.join(", ")}`);
    noStackTrace(t, r);
  });

  t.test("hostile input", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "floe-hostile-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));

    interface Case {
      readonly name: string;
      readonly file: string;
      readonly content: string | Buffer;
      readonly exit: number;
      /** Exact stdout lines; when absent, exactly one well-formed error line. */
      readonly lines?: readonly string[];
      /** Only the number of lines is fixed (each must be well-formed). */
      readonly count?: number;
    }
    const lol = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
    for (let i = 1; i < 10; i++) lol.push(`a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(", ")}]`);
    // A valid 2 MB flow: one chain of some 28,000 tasks, then an end (whole-flow checks must be linear).
    const chain = ["flows:", "  - id: big", "    triggers:", "      - {name: start, type: data}", "    tasks:", "      - {name: t0, type: exec, listen: trigger.good, opts: {cmd: x}}"];
    let size = chain.join("\n").length;
    for (let i = 1; size < 2_000_000; i++) {
      const line = `      - {name: t${i}, type: exec, listen: task.t${i - 1}.good, opts: {cmd: x}}`;
      chain.push(line);
      size += line.length + 1;
    }
    chain.push(`      - {name: done, type: end, listen: task.t${chain.length - 6}.good}`);
    // A merge any that every task of a long chain feeds back into: thousands of long listen cycles.
    const loops = 3000;
    const back = ["flows:", "  - id: loops", "    triggers:", "      - {name: start, type: data}", "    tasks:"];
    back.push(`      - {name: m, class: merge, type: any, wait: [trigger.good, ${Array.from({ length: loops }, (_, i) => `task.t${i + 1}.good`).join(", ")}]}`);
    back.push("      - {name: t1, type: exec, listen: merge.m.good, opts: {cmd: x}}");
    for (let i = 2; i <= loops; i++) back.push(`      - {name: t${i}, type: exec, listen: task.t${i - 1}.good, opts: {cmd: x}}`);
    back.push(`      - {name: done, type: end, listen: task.t${loops}.good}`);

    const cases: Case[] = [
      { name: "nesting 10,000 deep", file: "deep.yml", content: "[".repeat(10_000) + "]".repeat(10_000) + "\n", exit: 1, lines: ["deep.yml:1:64: error: YAML syntax: lists and maps are nested more than 64 levels deep"] },
      { name: "maps nested 1,000 deep", file: "deep-maps.yml", content: Array.from({ length: 1000 }, (_, i) => `${" ".repeat(i)}a:`).join("\n") + "\n", exit: 1, lines: ["deep-maps.yml:64:64: error: YAML syntax: lists and maps are nested more than 64 levels deep"] },
      { name: "a 5 MiB file", file: "huge.yml", content: "# padding padding padding padding padding padding padding padding\n".repeat(Math.ceil((5 << 20) / 66)).slice(0, 5 << 20), exit: 1, lines: [`huge.yml:1:1: error: the file is ${5 << 20} bytes; flow files may be at most ${4 << 20} bytes`] },
      { name: "billion laughs", file: "bomb.yml", content: lol.join("\n") + "\n", exit: 1, lines: ["bomb.yml:6:15: error: aliases expand to more than 200000 nodes; refusing to load (alias bomb?)"] },
      { name: "random bytes (seeded)", file: "random.yml", content: seededBytes(20261122, 64 << 10), exit: 1 },
      { name: "Latin-1 text", file: "latin1.yml", content: Buffer.from("flows:\n  - id: caf\u00e9\n", "latin1"), exit: 1, lines: ["latin1.yml:2:12: error: the file is not valid UTF-8 (bad byte at offset 18)"] },
      { name: "a NUL byte", file: "nul.yml", content: "flows:\n  - id: build\u0000\n", exit: 1, lines: ["nul.yml:2:14: error: the file contains a NUL byte; it is binary, not YAML"] },
      { name: "an empty file", file: "empty.yml", content: "", exit: 1, lines: ["empty.yml:1:1: error: the file is empty"] },
      { name: "only comments", file: "comments.yml", content: "# flows:\n#   - id: build\n", exit: 1, lines: ["comments.yml:1:1: error: the file holds no YAML document, only comments"] },
      { name: "two documents", file: "multi.yml", content: "flows: []\n---\nflows: []\n", exit: 1, lines: ["multi.yml:3:1: error: only one YAML document is allowed per file"] },
      { name: "duplicate keys", file: "dup.yml", content: "flows:\n  - id: build\n    id: build-2\n", exit: 1, lines: ['dup.yml:3:5: error: duplicate key "id"'] },
      { name: "tabs for indentation", file: "tabs.yml", content: "flows:\n  - id: build\n\ttriggers: []\n", exit: 1, lines: ["tabs.yml:3:1: error: YAML syntax: tab characters must not be used in indentation"] },
      {
        name: "lone CR line breaks",
        file: "cr.yml",
        content: "flows:\r  - id: build\r    ver: x\r",
        exit: 1,
        lines: ["cr.yml:2:5: warning: flow build (ver 1) has no tasks", 'cr.yml:3:10: error: "ver" in flows[0] must be a whole number, not the text "x"'],
      },
      {
        name: "control characters in keys and tags stay on one line",
        file: "controls.yml",
        content: 'flows:\n  - id: build\n    "na\\nme": x\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: a, type: end, listen: "trigger\\u001b[31m.good"}\n',
        exit: 0,
        lines: [
          'controls.yml:3:5: warning: unknown key "na\\nme" in flows[0] (did you mean "name"?); it is ignored',
          'controls.yml:6:38: warning: task "a" listens to "trigger\\u001b[31m.good", which no node of flow build (ver 1) emits (did you mean "trigger.good"?)',
        ],
      },
      { name: "a valid 2 MB flow, one long chain of tasks", file: "chain.yml", content: chain.join("\n") + "\n", exit: 0, lines: [] },
      { name: "thousands of long listen cycles", file: "loops.yml", content: back.join("\n") + "\n", exit: 0, count: loops },
    ];
    if (existsSync("/dev/zero")) {
      cases.push({
        name: "a flow-file that never ends",
        file: "zero.yml",
        content: "flows:\n  - id: build\n    triggers: [{name: go, type: data}]\n    flow-file: /dev/zero\n",
        exit: 0,
        lines: ["zero.yml:4:16: warning: flow build: flow-file /dev/zero is not a regular file; it will be loaded when the flow is triggered"],
      });
    }

    for (const c of cases) {
      writeFileSync(join(dir, c.file), c.content);
      const r = await validate([c.file], dir, 30_000);
      t.not(r.code, null, `${c.name}: finished within 30 s`);
      t.equal(r.code, c.exit, `${c.name}: exit ${c.exit}`);
      const got = lines(r.stdout);
      if (c.lines !== undefined) t.same(got, c.lines, `${c.name}: output`);
      else if (c.count !== undefined) t.equal(got.length, c.count, `${c.name}: ${c.count} lines`);
      else {
        t.equal(got.length, 1, `${c.name}: one line`);
        t.match(got[0] ?? "", /: error: /, `${c.name}: an error`);
      }
      const shape = DIAGNOSTIC(c.file);
      t.same(got.filter((l) => !shape.test(l)), [], `${c.name}: every line is FILE:LINE:COL: error|warning: message`);
      noStackTrace(t, r);
    }
  });
}
