/**
 * Form values full of shell metacharacters — `;`, `$(…)`, backticks, `|`, `&&`, newlines,
 * quotes, `$IFS`, globs, redirections — through a data trigger's form (POST /flows/:id/runs
 * and floe's POST /push/data) into an exec task whose `shell` writes `printf '%s' "$FIELD"`
 * to a file. Every value must arrive byte for byte in the task's environment, and nothing in
 * it may run: each value carries commands that would create a canary file, and none may exist.
 * Seeded: the seed is printed; FLOE_FUZZ_SEED repeats a run.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startApi } from "../helpers/api.js";
import { fuzzRng, type Rng } from "./prng.js";

const FILE = "test/fuzz/form-shell.test.ts";
const RUNS = 40;

/** Fragments that a shell would act on if the value were ever spliced into a command. */
function injections(canary: string): string[] {
  return [
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `; touch ${canary}`,
    `| touch ${canary}`,
    `&& touch ${canary}`,
    `|| touch ${canary}`,
    `\ntouch ${canary}\n`,
    `"; touch ${canary}; "`,
    `'; touch ${canary}; '`,
    `\${IFS}touch\${IFS}${canary}`,
    `$IFS;touch$IFS${canary}`,
    `> ${canary}`,
    `& touch ${canary} &`,
    `$(printf x > ${canary})`,
    `<(touch ${canary})`,
    `\${x:-$(touch ${canary})}`,
    `\\"; touch ${canary} #`,
  ];
}

const NOISE = ["*", "?", "[a-z]", "~", "$HOME", "${PATH}", "$$", "$0", "$1", "\\", "\\n", "\t", "\r\n", "'", '"', "{a,b}", "!!", "#", "%s", "%n", "-e", "--", " ", "ü", "😀", "\u00a0", ""];

function value(rng: Rng, canary: string): string {
  const parts: string[] = [];
  for (let i = rng.range(1, 5); i > 0; i--) parts.push(rng.bool(0.6) ? rng.pick(injections(canary)) : rng.pick(NOISE));
  const v = parts.join(rng.pick(["", " ", "\n"]));
  // Both fields are required: an empty value is rightly refused (400), which is not what this tests.
  return v === "" ? "x" : v;
}

t.test("shell metacharacters in form values arrive verbatim and never run", async (t) => {
  const rng = fuzzRng(t, FILE, 1);
  const dir = t.testdir({ out: {}, canaries: {} });
  const out = join(dir, "out");
  const canaries = join(dir, "canaries");
  const a = await startApi(
    t,
    `
flows:
  - id: echo
    env: ["OUT=${out}"]
    triggers:
      - name: start
        type: data
        opts: {form: {title: Echo, fields: [{id: field, prompt: Field, type: text}, {id: other-field, prompt: Other, type: string}]}}
    tasks:
      - name: write
        type: exec
        listen: trigger.good
        opts: {shell: 'printf "%s" "$FIELD" > "$OUT/$FLOE_RUN_ID.field"; printf "%s" "$OTHER_FIELD" > "$OUT/$FLOE_RUN_ID.other"'}
      - {name: fin, type: end, listen: task.write.good}
`,
  );
  const sent = new Map<string, { field: string; other: string }>();
  for (let i = 0; i < RUNS; i++) {
    const canary = join(canaries, `c${i}`);
    const field = value(rng, canary);
    const other = value(rng, canary);
    const viaPush = rng.bool(0.3);
    const r = viaPush
      ? await a.call("POST", "/push/data", { body: { Ref: { ID: "echo" }, Form: { ID: "start", Values: { field, "other-field": other } } } })
      : await a.call("POST", "/flows/echo/runs", { body: { values: { field, "other-field": other } } });
    t.equal(r.status, 201, `run ${i} started (${viaPush ? "/push/data" : "/flows/echo/runs"})`);
    const json = r.json as { run?: { ref: { run: string } }; Payload?: { run: { ref: { run: string } } } };
    const run = (json.run ?? json.Payload?.run)?.ref.run;
    if (run === undefined) continue;
    sent.set(run, { field, other });
  }
  for (const [run, v] of sent) {
    const end = await a.end(run, 120_000);
    t.equal(end.result, "good", `run ${run} ended good`);
    const got = readFileSync(join(out, `${run}.field`));
    t.ok(got.equals(Buffer.from(v.field, "utf8")), `FIELD arrived byte for byte: ${JSON.stringify(v.field).slice(0, 120)}`);
    const gotOther = readFileSync(join(out, `${run}.other`));
    t.ok(gotOther.equals(Buffer.from(v.other, "utf8")), `OTHER_FIELD arrived byte for byte: ${JSON.stringify(v.other).slice(0, 120)}`);
  }
  t.same(readdirSync(canaries), [], "no canary file: nothing in a value ever ran");
});

// An environment variable can not hold a NUL byte: such a value must be refused or fail the
// task, never hang the run or take the host down.
t.test("a NUL byte in a form value is refused or fails the task, and the host goes on", async (t) => {
  const a = await startApi(t, `
flows:
  - id: echo
    triggers: [{name: start, type: data, opts: {form: {title: Echo, fields: [{id: field, prompt: Field, type: text}]}}}]
    tasks:
      - {name: write, type: exec, listen: trigger.good, opts: {shell: 'printf "%s" "$FIELD"'}}
`);
  const r = await a.call("POST", "/flows/echo/runs", { body: { values: { field: "a\u0000b" } } });
  t.comment(`answered ${r.status}: ${r.text.slice(0, 200)}`);
  if (r.status === 201) {
    const run = (r.json as { run: { ref: { run: string } } }).run.ref.run;
    const end = await a.end(run, 120_000);
    t.not(end.result, "good", `the run did not pretend it passed the value: ${end.reason ?? ""}`);
  } else {
    t.equal(r.status, 400, "refused as a bad request");
  }
  t.equal((await a.call("GET", "/healthz", { token: null })).status, 200, "the host still serves");
});
