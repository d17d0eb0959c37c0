/**
 * Hostile ids — `../`, NUL, `*`, `>`, `.`, `:`, unicode, 10 kB strings — as run ids, flow
 * ids, node ids, trigger names, value names and host names:
 *   - through every HTTP route and body field that takes one, on a real hub whose root sits
 *     deep in a sandbox: no 5xx, and no file appears or changes anywhere in the sandbox outside
 *     the root, nor in the temp directory above it (snapshots before and after);
 *   - through the cluster's name builders (store/redis-keys.ts, store/nats-subjects.ts):
 *     a subject never gains a token or a wildcard, a Redis key never leaves floe's prefix or
 *     changes its number of segments, and two ids never share a key or a subject.
 * Seeded: the seed is printed; FLOE_FUZZ_SEED repeats a run.
 */
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { errorMessage } from "../../flows/errors.js";
import { natsNames } from "../../store/nats-subjects.js";
import { keyPart, redisKeys } from "../../store/redis-keys.js";
import { startApi } from "../helpers/api.js";
import { floeBin } from "../helpers/paths.js";
import { fuzzRng, HOSTILE, type Rng } from "./prng.js";

const FILE = "test/fuzz/ids.test.ts";

/** Every entry under `dir` but `skip`, with its size and mtime: what a stray write would change. */
function snapshot(dir: string, skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (p === skip) continue;
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (st === undefined) continue;
      out.set(p, `${st.isDirectory() ? "d" : "f"}:${st.isDirectory() ? 0 : st.size}:${st.mtimeMs}`);
      if (st.isDirectory() && !st.isSymbolicLink()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** Ids that try to climb out of any directory they are joined into, named so a stray file is recognisable. */
function climbing(mark: string): string[] {
  return [1, 2, 3, 4, 5, 6, 7, 8, 12].flatMap((k) => [`${"../".repeat(k)}${mark}`, `${"..%2f".repeat(k)}${mark}`, `${"..\\".repeat(k)}${mark}`]).concat([`/tmp/${mark}`, `/${mark}`, `.${mark}`, `${mark}\u0000.json`]);
}

function hostileId(rng: Rng, mark: string): string {
  switch (rng.int(4)) {
    case 0:
      return rng.pick(climbing(mark));
    case 1:
      return rng.pick(HOSTILE);
    case 2:
      return `${rng.pick(HOSTILE).slice(0, 20)}${rng.pick(climbing(mark))}`;
    default:
      return rng.text(16);
  }
}

t.test("hostile ids over HTTP: no 5xx, no file outside the root", async (t) => {
  const rng = fuzzRng(t, FILE, 1);
  // The root sits five levels into a sandbox, so ids with up to five ../ land inside it (and are
  // seen by the snapshot); deeper ones aim at the temp dir, checked by name below.
  const sandbox = t.testdir({});
  const root = join(sandbox, "a", "b", "c", "d", "root");
  mkdirSync(root, { recursive: true });
  const mark = `floe-fuzz-escape-${process.pid}-${rng.seed}`;
  const flows = `
flows:
  - id: greet
    triggers:
      - {name: start, type: data, opts: {form: {title: Hi, fields: [{id: name, prompt: Name, type: string}]}}}
    tasks:
      - {name: ask, type: data, listen: trigger.good, opts: {form: {title: More, fields: [{id: more, prompt: More, type: string}]}}}
      - {name: fin, type: end, listen: task.ask.good}
`;
  const before = snapshot(sandbox, root);
  const tmpBefore = new Set(readdirSync(tmpdir()));
  const a = await startApi(t, flows, { root });
  const started = await a.call("POST", "/flows/greet/runs", { body: { values: { name: "x" } } });
  t.equal(started.status, 201);
  const runId = (started.json as { run: { ref: { run: string } } }).run.ref.run;
  const failures: string[] = [];
  const send = async (method: string, path: string, body?: unknown): Promise<void> => {
    let r;
    try {
      r = await a.call(method, path, body === undefined ? {} : { body });
    } catch (e) {
      failures.push(`${method} ${path.slice(0, 120)}: ${errorMessage(e)}`);
      return;
    }
    if (r.status >= 500) failures.push(`${method} ${path.slice(0, 120)} ${JSON.stringify(body)?.slice(0, 120)}: ${r.status} ${r.text.slice(0, 200)}`);
  };
  const enc = (s: string) => (rng.bool(0.8) ? encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "?")) : s.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c.replace(/[\ud800-\udfff]/g, "?"))));
  for (let i = 0; i < 1000; i++) {
    const id = hostileId(rng, mark);
    switch (rng.int(10)) {
      case 0:
        await send("POST", `/flows/${enc(id)}/runs`, { values: { name: "x" } });
        break;
      case 1:
        await send("POST", "/flows/greet/runs", { trigger: id, values: { name: id } });
        break;
      case 2:
        await send("POST", "/flows/greet/runs", { values: { [id.slice(0, 200)]: id } });
        break;
      case 3:
        await send("POST", `/runs/${enc(rng.bool() ? id : runId)}/nodes/${enc(rng.bool() ? id : "ask")}/data`, { values: { [id.slice(0, 200)]: "v", more: id } });
        break;
      case 4:
        await send("GET", `/runs/${enc(rng.bool() ? id : runId)}/nodes/${enc(id)}/log`);
        break;
      case 5:
        await send("POST", `/runs/${enc(id)}/cancel`);
        break;
      case 6:
        await send("GET", `/runs/${enc(id)}`);
        break;
      case 7:
        await send("GET", `/runs?flow=${encodeURIComponent(id.replace(/[\ud800-\udfff]/g, "?"))}&before=${encodeURIComponent(id.slice(0, 64).replace(/[\ud800-\udfff]/g, "?"))}`);
        break;
      case 8:
        // floe's own /push/data names flows, runs and nodes without a path pattern.
        await send("POST", "/push/data", rng.bool() ? { Ref: { ID: id.slice(0, 128) }, Form: { ID: id.slice(0, 128), Values: { name: id } } } : { Run: rng.bool() ? runId : id.slice(0, 64), Form: { ID: id.slice(0, 128), Values: { more: id } } });
        break;
      default:
        await send("POST", `/hooks/${enc(id)}/${enc(id)}`, {});
    }
  }
  t.same(failures.slice(0, 20), [], `${failures.length} failures`);
  // The real run still works after all that.
  t.equal((await a.call("GET", `/runs/${runId}`)).status, 200, "the run is still there");
  t.same([...snapshot(sandbox, root).entries()].filter(([p, v]) => before.get(p) !== v), [], "nothing appeared or changed in the sandbox outside the root");
  const strays = readdirSync(tmpdir()).filter((n) => !tmpBefore.has(n) && n.includes(mark));
  t.same(strays, [], "nothing named by a hostile id appeared in the temp dir");
  const inRoot = [...snapshot(a.root, "").keys()].filter((p) => p.includes(mark) || p.includes("\u0000"));
  t.same(inRoot, [], "no hostile id became a file name inside the root either");
});

t.test("NATS subjects and Redis keys: hostile ids never add tokens, wildcards or key segments", async (t) => {
  const rng = fuzzRng(t, FILE, 2);
  const ids = new Set<string>([...HOSTILE, ...climbing("x"), "", " ", ".", "..", "a.b", "a b", "*", ">", "a>", "a*", "%", "%2E", "~", "a~b", "x".repeat(10_000)]);
  while (ids.size < 3000) {
    const k = rng.int(3);
    ids.add(k === 0 ? rng.text(rng.pick([4, 40, 300])) : k === 1 ? `${rng.pick(HOSTILE).slice(0, 30)}${rng.text(6)}` : Array.from({ length: rng.range(1, 6) }, () => rng.pick([".", "*", ">", ":", "%", "~", "a", "..", "\u0000", " ", "-", "_"])).join(""));
  }
  const all = [...ids];
  // Subjects: floe.<cluster>.ev.<run>.<kind>[.<node>] and floe.<cluster>.host.<host>.<verb>.
  const cluster = rng.pick(all);
  const n = natsNames(cluster);
  const c = n.event("r", "run").split(".")[1] ?? "";
  const TOKEN = /^[A-Za-z0-9_%~-]+$/;
  const bad: string[] = [];
  const subjects = new Map<string, string>();
  for (const id of all) {
    const shown = JSON.stringify(id.slice(0, 20));
    const kinds: [string, string, number][] = [
      ["run event", n.event(id, "run"), 5],
      ["node event", n.event(id, "node", id), 6],
      ["log event", n.event(id, "log", id), 6],
      ["node logs", n.nodeLogs(id, id), 6],
      ["host verb", n.hostVerb(id, id), 5],
    ];
    for (const [kind, s, tokens] of kinds) {
      const parts = s.split(".");
      if (parts.length !== tokens) bad.push(`${kind} of ${shown}: ${parts.length} tokens in ${s.slice(0, 80)}`);
      if (!parts.every((p) => TOKEN.test(p))) bad.push(`${kind} of ${shown}: a wildcard, space or empty token in ${s.slice(0, 80)}`);
      if (parts[1] !== c) bad.push(`${kind} of ${shown}: left its cluster`);
      const seen = subjects.get(`${kind}:${s}`);
      if (seen !== undefined && seen !== id) bad.push(`${kind}: ${shown} and ${JSON.stringify(seen.slice(0, 20))} share ${s.slice(0, 80)}`);
      subjects.set(`${kind}:${s}`, id);
    }
    const filter = n.runEvents(id);
    if (!filter.endsWith(".>") || filter.slice(0, -2).split(".").some((p) => !TOKEN.test(p))) bad.push(`run filter of ${shown}: ${filter.slice(0, 80)}`);
  }
  t.match(n.stream, /^FLOE_EV_[A-Za-z0-9_%~-]+$/, "the stream name is a valid JetStream name");
  // Redis keys: every key under floe:<cluster>:, a fixed number of ':' segments per kind.
  const k = redisKeys(cluster);
  const keys = new Map<string, string>();
  for (const id of all) {
    const shown = JSON.stringify(id.slice(0, 20));
    const part = keyPart(id);
    if (!/^[A-Za-z0-9_%~-]+$/.test(part) || part.length > 200) bad.push(`key part of ${shown}: ${part.slice(0, 80)}`);
    const kinds: [string, string, number][] = [
      ["nodes", k.nodes(id), 4],
      ["tick", k.tick(id), 4],
      ["value", k.value(id), 4],
      ["session", k.session(id), 4],
      ["reply", k.reply(id), 4],
      ["by flow", k.indexByFlow(id), 5],
      ["by flow and state", k.indexByFlowState(id, "active"), 6],
    ];
    for (const [kind, key, segments] of kinds) {
      if (!key.startsWith(k.prefix)) bad.push(`${kind} of ${shown}: outside ${k.prefix}`);
      if (key.split(":").length !== segments) bad.push(`${kind} of ${shown}: ${key.split(":").length} segments`);
      if (/[\s*?[\]\u0000]/.test(key)) bad.push(`${kind} of ${shown}: a glob or space in ${key.slice(0, 80)}`);
      const seen = keys.get(`${kind}:${key}`);
      if (seen !== undefined && seen !== id) bad.push(`${kind}: ${shown} and ${JSON.stringify(seen.slice(0, 20))} share a key`);
      keys.set(`${kind}:${key}`, id);
    }
  }
  t.same(bad.slice(0, 20), [], `${all.length} ids: ${bad.length} problems`);
});

t.test("hostile host and cluster names are refused at start, before anything is written", async (t) => {
  const dir = t.testdir({});
  const conf = join(dir, "flows.yml");
  writeFileSync(conf, "flows:\n  - id: a\n    tasks: [{name: e, type: end, listen: trigger.good}]\n");
  const env = { ...process.env };
  delete env["NODE_OPTIONS"];
  for (const [flag, value] of [["host", "../x"], ["host", "a.b"], ["host", "*"], ["host", ">"], ["host", "a:b"], ["host", "a b"], ["host", ".."], ["cluster", "a.*"], ["cluster", "../c"], ["cluster", "x:y"]] as const) {
    const root = join(dir, `root-${flag}-${encodeURIComponent(value)}`);
    const r = spawnSync(process.execPath, [floeBin, "serve", `--conf=${conf}`, `--root=${root}`, "--bind=127.0.0.1:0", "--admin=x", `--${flag}=${value}`], { encoding: "utf8", timeout: 30_000, env });
    t.equal(r.status, 2, `--${flag}=${value}: a usage error`);
    t.match(r.stderr, new RegExp(`--${flag}`), "naming the flag");
    t.notOk(existsSync(root), "nothing written");
  }
});
