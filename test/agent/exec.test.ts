import { existsSync } from "node:fs";
import { chmod, mkdir, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import t from "tap";
import { runExec, splitWords } from "../../agent/exec.js";
import { alive, lines, request, waitFor, workspace } from "./helpers.js";

t.test("cmd: echo, sys lines first", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runExec(request(ws, { cmd: `echo "a  b" 'c'  d` }, { onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} });
  t.same(l.texts("sys"), [`in dir: ${ws}`, "echo a  b c d"]);
  t.same(l.texts("out"), ["a  b c d"], "quotes group words, whitespace runs split");
  t.equal(l.all[0]?.stream, "sys");
});

t.test("splitWords", async (t) => {
  t.same(splitWords("  a\tb   c "), ["a", "b", "c"]);
  t.same(splitWords(`x"y z"w '' "$HOME"`), ["xy zw", "", "$HOME"]);
  t.match(splitWords(`echo "open`), /unterminated " quote/);
});

t.test("args are passed as given, not split", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runExec(request(ws, { cmd: "printf", args: ["%s|", "x y", 3, "./f"] }, { onLine: l.onLine }));
  t.equal(r.status, 0);
  t.same(l.texts("out"), [`x y|3|${ws}/f|`], "numbers become text; ./ is workspace-relative as in floe");
});

t.test("shell: bash -c with args joined; cmd wins over shell", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  await runExec(request(ws, { shell: "echo hi | tr a-z A-Z;", args: ["echo", "two"] }, { onLine: l.onLine }));
  t.same(l.texts("out"), ["HI", "two"]);
  t.equal(l.texts("sys")[1], "bash -c echo hi | tr a-z A-Z; echo two");
  const l2 = lines();
  await runExec(request(ws, { cmd: "echo from-cmd", shell: "echo from-shell" }, { onLine: l2.onLine }));
  t.same(l2.texts("out"), ["from-cmd"]);
});

t.test("neither cmd nor shell is an error", async (t) => {
  const ws = await workspace(t);
  const r = await runExec(request(ws, { shell: "  " }));
  t.same(r, { status: 1, error: "exec needs opts.cmd or opts.shell", outputs: {} });
  t.match((await runExec(request(ws, { cmd: 3 }))).error, /must be a string/);
  t.match((await runExec(request(ws, { cmd: "echo", args: "x" }))).error, /must be a list/);
});

t.test("$VAR: expanded by bash from the task env in shell, literal in cmd", async (t) => {
  const ws = await workspace(t);
  const env = ["GREETING=hello", "GREETING=hello there"];
  const l = lines();
  await runExec(request(ws, { shell: `echo "$GREETING"` }, { env, onLine: l.onLine }));
  t.same(l.texts("out"), ["hello there"], "later env entry wins");
  const l2 = lines();
  await runExec(request(ws, { cmd: "echo $GREETING ${HOME}" }, { env, onLine: l2.onLine }));
  t.same(l2.texts("out"), ["$GREETING ${HOME}"]);
  const l3 = lines();
  await runExec(request(ws, { shell: `echo "$PASS"` }, { env: ["PASS=pa$$w$HOME"], onLine: l3.onLine }));
  t.same(l3.texts("out"), ["pa$$w$HOME"], "env values are literal");
});

t.test("cmd is looked up on the task's PATH, relative entries from the workspace", async (t) => {
  const ws = await workspace(t);
  await mkdir(path.join(ws, "tools"));
  const tool = path.join(ws, "tools", "floe-test-tool");
  await writeFile(tool, "#!/bin/sh\necho tool ran in $(pwd)\n");
  await chmod(tool, 0o755);
  const l = lines();
  const r = await runExec(
    request(ws, { cmd: "floe-test-tool", "sub-dir": "src" }, { env: ["PATH=tools:$PATH"], onLine: l.onLine }),
  );
  t.equal(r.status, 0);
  t.same(l.texts("out"), [`tool ran in ${ws}/src`]);
  const l2 = lines();
  await runExec(request(ws, { shell: "command -v sh >/dev/null && echo $PATH" }, { env: ["PATH=./x:${PATH}"], onLine: l2.onLine }));
  t.equal(l2.texts("out")[0], `./x:${process.env["PATH"] ?? ""}`, "a self-reference extends the host PATH");
});

t.test("command not found", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runExec(request(ws, { cmd: "floe-no-such-cmd --x" }, { onLine: l.onLine }));
  t.same(r, { status: 127, error: "floe-no-such-cmd: command not found", outputs: {} });
  t.equal(l.texts("sys").at(-1), "floe-no-such-cmd: command not found");
});

t.test("sub-dir is created 0700 and may not leave the workspace", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runExec(request(ws, { cmd: "pwd", "sub-dir": "a/b" }, { onLine: l.onLine }));
  t.equal(r.status, 0);
  t.same(l.texts("out"), [`${ws}/a/b`]);
  t.equal((await stat(path.join(ws, "a/b"))).mode & 0o777, 0o700);
  const bad = await runExec(request(ws, { cmd: "pwd", "sub-dir": "a/../../x" }));
  t.match(bad.error, /outside the workspace/);
  t.notOk(existsSync(path.join(ws, "..", "x")));
});

t.test("FLOEWS and FLOE_* are set; host FLOE_* settings are not passed", async (t) => {
  const ws = await workspace(t);
  process.env["FLOE_ADMIN"] = "secret-token";
  t.teardown(() => delete process.env["FLOE_ADMIN"]);
  const l = lines();
  const script = `echo "$FLOEWS|$FLOE_RUN_ID|$FLOE_FLOW|$FLOE_NODE|\${FLOE_ADMIN:-unset}"; test -f "$FLOE_OUTPUT" && test ! -s "$FLOE_OUTPUT" && echo "$FLOE_OUTPUT"`;
  const r = await runExec(request(ws, { shell: script }, { onLine: l.onLine }));
  t.equal(r.status, 0);
  t.equal(l.texts("out")[0], `${ws}|01TESTRUN|build|step|unset`);
  const out = l.texts("out")[1] ?? "";
  t.ok(out !== "" && !out.startsWith(ws), "an empty outputs file outside the workspace");
  t.notOk(existsSync(out), "removed afterwards");
});

t.test("outputs are parsed from $FLOE_OUTPUT", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const script = [
    `echo "version=1.2.3" >> "$FLOE_OUTPUT"`,
    `printf '# note\\n\\nurl=http://x/?a=b\\nbad-key=1\\n' >> "$FLOE_OUTPUT"`,
    "exit 4",
  ].join("; ");
  const r = await runExec(request(ws, { shell: script }, { onLine: l.onLine }));
  t.same(r, { status: 4, outputs: { version: "1.2.3", url: "http://x/?a=b" } });
  t.match(l.texts("sys"), [/in dir/, /bash -c/, "exited with status: 4", /line 5 ignored: "bad-key" is not a valid name/]);
});

t.test("the outputs folder removed behind floe's back (a tmp cleaner) is made again", async (t) => {
  const ws = await workspace(t);
  const first = lines();
  t.equal((await runExec(request(ws, { shell: 'echo "$FLOE_OUTPUT"' }, { onLine: first.onLine }))).status, 0);
  const folder = path.dirname(first.texts("out")[0] ?? "");
  t.ok(existsSync(folder), `the outputs folder ${folder}`);
  await rm(folder, { recursive: true, force: true });
  const l = lines();
  const r = await runExec(request(ws, { shell: 'echo "k=v" >> "$FLOE_OUTPUT"; echo "$FLOE_OUTPUT"' }, { onLine: l.onLine }));
  t.same(r, { status: 0, outputs: { k: "v" } }, "the task ran once, with its outputs");
  t.not(path.dirname(l.texts("out")[0] ?? ""), folder, "in a new folder");
});

t.test("a FIFO put in place of the outputs file does not stall floe", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const r = await runExec(request(ws, { shell: 'rm "$FLOE_OUTPUT"; mkfifo "$FLOE_OUTPUT"; echo "$FLOE_OUTPUT"' }, { onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} }, "no outputs, no hang");
  t.notOk(existsSync(l.texts("out")[0] ?? ""), "the FIFO is removed");
});

t.test("abort kills the task and reports why", async (t) => {
  const ws = await workspace(t);
  const ac = new AbortController();
  const l = lines();
  const p = runExec(request(ws, { shell: "sleep 1000 & echo $!; wait" }, { signal: ac.signal, onLine: l.onLine }));
  await waitFor("started", () => l.texts("out").length > 0);
  ac.abort(new Error("timed out after 2s"));
  const r = await p;
  t.same(r, { status: -1, reason: "timed out after 2s", outputs: {} });
  t.equal(l.texts("sys").at(-1), "killed: timed out after 2s");
  await waitFor("grandchild gone", () => !alive(Number(l.texts("out")[0])));
});
