/**
 * kill -9 at random instants: a process writing whole files must leave the old or the new
 * file, and one appending lines must leave whole lines (plus at most a torn tail). The
 * children run the built modules (dist/), so `npm run build` must come first, as in CI.
 */
import t from "tap";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { AppendLog, readJsonLines } from "../../store/append-log.js";
import { readJsonFile, removeStaleTemps, writeFileAtomic } from "../../store/atomic-file.js";
import { repoRoot } from "../helpers/paths.js";

/** The built module, or why it can not be used (missing or older than its source). */
function built(name: string): { url: string } | { problem: string } {
  const js = join(repoRoot, "dist", "store", `${name}.js`);
  const ts = join(repoRoot, "store", `${name}.ts`);
  if (!existsSync(js)) return { problem: `${js} is missing: run \`npm run build\` before \`npm test\`` };
  if (statSync(js).mtimeMs < statSync(ts).mtimeMs) return { problem: `${js} is older than ${ts}: run \`npm run build\`` };
  return { url: pathToFileURL(js).href };
}

/** Starts `node script ...args` and resolves once it printed "ready" (or rejects with its stderr). */
function startChild(script: string, args: string[], deadlineMs = 15_000): Promise<ChildProcess> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`child not ready after ${deadlineMs} ms: ${err}`));
    }, deadlineMs);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready\n")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${String(code)}) before ready: ${err}`));
    });
  });
}

/** SIGKILL after a random delay (the crash point), then wait until it is gone. */
async function killAtRandom(child: ChildProcess, maxDelayMs: number): Promise<void> {
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  await new Promise((r) => setTimeout(r, Math.random() * maxDelayMs));
  child.kill("SIGKILL");
  await gone;
}

const PAD = 1 << 20;

t.test("writeFileAtomic killed at random instants: the target is always old or new, whole", async (t) => {
  const mod = built("atomic-file");
  if ("problem" in mod) return t.fail(mod.problem);
  const dir = t.testdir({});
  const target = join(dir, "run.json");
  const script = join(dir, "writer.mjs");
  await writeFile(
    script,
    `const { writeFileAtomic } = await import(process.argv[2]);
const [target, start] = [process.argv[3], Number(process.argv[4])];
for (let v = start + 1; ; v++) {
  await writeFileAtomic(target, JSON.stringify({ v, pad: "x".repeat(${PAD}) }));
  if (v === start + 1) process.stdout.write("ready\\n");
}
`,
  );
  await writeFileAtomic(target, JSON.stringify({ v: 0, pad: "x".repeat(PAD) }));
  let last = 0;
  let tempsLeft = 0;
  for (let i = 0; i < 30; i++) {
    const child = await startChild(script, [mod.url, target, String(last)]);
    await killAtRandom(child, 40);
    const v = (await readJsonFile(target)) as { v: number; pad: string };
    if (v.pad.length !== PAD || !(v.v > last)) return t.fail(`iteration ${i}: read ${v.v} (pad ${v.pad.length}) after ${last}`);
    last = v.v;
    tempsLeft += await removeStaleTemps(dir);
  }
  t.pass(`30 kills, target always whole; ${last} versions written`);
  t.comment(`${tempsLeft} kills landed mid-write (a temp file was left)`);
  t.same((await readdir(dir)).sort(), ["run.json", "writer.mjs"], "stale temps cleaned");
});

t.test("AppendLog killed at random instants: whole lines, reopened logs continue cleanly", async (t) => {
  const mod = built("append-log");
  if ("problem" in mod) return t.fail(mod.problem);
  const dir = t.testdir({});
  const p = join(dir, "node-t.log");
  const script = join(dir, "appender.mjs");
  await writeFile(
    script,
    `const { AppendLog, readJsonLines } = await import(process.argv[2]);
const p = process.argv[3];
let i = (await readJsonLines(p)).records.length;
const log = new AppendLog(p); // repairs a torn tail on open
for (let round = 0; ; round++) {
  for (let k = 0; k < 300; k++) log.append({ i: i++, pad: "z".repeat(400) });
  await log.flush();
  if (round === 0) process.stdout.write("ready\\n");
}
`,
  );
  let torn = 0;
  let count = 0;
  for (let n = 0; n < 15; n++) {
    const child = await startChild(script, [mod.url, p]);
    await killAtRandom(child, 40);
    const r = await readJsonLines(p);
    if (r.torn) torn++;
    if (r.corrupt !== 0) return t.fail(`kill ${n}: ${r.corrupt} corrupt lines`);
    const bad = r.records.findIndex((x, i) => (x as { i: number }).i !== i || (x as { pad: string }).pad.length !== 400);
    if (bad >= 0) return t.fail(`kill ${n}: record ${bad} is ${JSON.stringify(r.records[bad]).slice(0, 80)}`);
    if (r.records.length <= count) return t.fail(`kill ${n}: no progress (${r.records.length} records)`);
    count = r.records.length;
  }
  t.pass(`15 kills, ${count} records, every complete line parsed, numbering unbroken`);
  t.comment(`${torn} kills left a torn last line`);

  const log = new AppendLog(p);
  log.append({ i: count, pad: "z".repeat(400) });
  await log.close();
  const r = await readJsonLines(p);
  t.same({ n: r.records.length, torn: r.torn, corrupt: r.corrupt }, { n: count + 1, torn: false, corrupt: 0 }, "reopened log appends after a clean tail");
});
