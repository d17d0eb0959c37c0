/**
 * The operators' commands against a live host: trigger (with --follow), runs, logs (with
 * --follow), cancel; clear errors for a wrong token, an unreachable server, an unknown run;
 * pause, resume and rerun for their arguments and a server without those routes; shell
 * completion.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import t from "tap";
import { startFloe, type FloeProcess } from "../helpers/floe-process.js";
import { until } from "../helpers/hub.js";
import { floeBin } from "../helpers/paths.js";
import { freePort } from "../helpers/servers.js";

interface Result {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Result> {
  return cliLive(args, env).done;
}

/** The command running, with what it printed so far. */
function cliLive(args: readonly string[], env: Record<string, string> = {}): { done: Promise<Result>; stdout: () => string } {
  let out = "";
  const done = new Promise<Result>((resolve) => {
    const child = spawn(process.execPath, [floeBin, ...args], { env: { ...process.env, FLOE_SERVER: "", FLOE_TOKEN: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      out = stdout;
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (status) => resolve({ status, stdout, stderr }));
  });
  return { done, stdout: () => out };
}

const CONF = `
flows:
  - id: hello
    triggers: [{name: go, type: data, opts: {form: {fields: [{id: who, type: string, value: world, required: false}]}}}]
    tasks:
      - {name: say, type: exec, listen: trigger.good, opts: {shell: 'echo "hello, $who"; echo "to stderr" >&2'}}
      - {name: more, type: exec, listen: task.say.good, opts: {shell: 'echo "second node"'}}
  - id: fails
    triggers: [{name: go, type: data}]
    tasks:
      - {name: boom, type: exec, listen: trigger.good, opts: {shell: 'echo "about to fail"; exit 4'}}
  - id: slow
    triggers: [{name: go, type: data}]
    tasks:
      - {name: wait, type: exec, listen: trigger.good, opts: {shell: 'echo "waiting"; sleep 0.5; echo "still waiting"; sleep 60'}}
`;

const LINE = (flow: string, node: string, text: string) => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z \\[${flow}\\.${node}\\] ${text}$`, "m");

t.test("the operators' commands against a live host", async (t) => {
  const dir = t.testdir({ "flows.yml": CONF });
  const root = join(dir, "root");
  const h: FloeProcess = await startFloe({ conf: join(dir, "flows.yml"), root });
  t.teardown(() => h.kill9());
  const env = { FLOE_SERVER: h.url, FLOE_TOKEN: h.token };

  // trigger: prints the run's id.
  const started = await cli(["trigger", "hello", "--set", "who=Ada"], env);
  t.equal(started.status, 0, started.stderr);
  const run = started.stdout.trim();
  t.match(run, /^[0-9A-Z]{26}$/);
  await until(async () => ((await h.req("GET", `/runs/${run}`)).body as { state: string }).state === "archived", 20_000, "the run to end");

  // trigger --follow: the output as it is printed, then exit 0 for a good run, 1 for a bad one.
  const good = await cli(["trigger", "hello", "--follow", "--set", "who=Bo"], env);
  t.equal(good.status, 0, good.stderr);
  t.match(good.stdout, LINE("hello", "say", "hello, Bo"));
  t.match(good.stdout, LINE("hello", "say", "to stderr"));
  t.match(good.stdout, LINE("hello", "more", "second node"));
  t.match(good.stderr, /started run [0-9A-Z]{26} of hello\/1[\s\S]*ended good/);
  const bad = await cli(["trigger", "fails", "--follow"], { FLOE_SERVER: `${h.url}/build/api`, FLOE_TOKEN: h.token });
  t.equal(bad.status, 1, "a run that ends bad: exit 1");
  t.match(bad.stdout, LINE("fails", "boom", "about to fail"));
  t.match(bad.stderr, /ended bad: task\.boom\.bad has no listener/);
  const unknownFlow = await cli(["trigger", "nope"], env);
  t.equal(unknownFlow.status, 1);
  t.match(unknownFlow.stderr, /floe trigger: .*nope/);

  // runs: a table (tab-separated without a terminal), newest first; --json for scripts.
  const runs = await cli(["runs"], env);
  t.equal(runs.status, 0, runs.stderr);
  const rows = runs.stdout.trim().split("\n").map((l) => l.split("\t"));
  t.equal(rows.length, 3);
  t.same(rows.map((r) => r[0]), ["bad", "good", "good"]);
  t.equal(rows[2]?.[1], run);
  t.equal(rows[2]?.[2], "hello/1");
  const json = await cli(["runs", "--flow=hello", "--json", "--limit=1"], env);
  const list = JSON.parse(json.stdout) as { ref: { flow: string } }[];
  t.equal(list.length, 1);
  t.equal(list[0]?.ref.flow, "hello");
  const none = await cli(["runs", "--state=pending"], env);
  t.equal(none.status, 0);
  t.match(none.stderr, /no runs that are pending/);
  t.equal((await cli(["runs", "--state=done"], env)).status, 2);
  t.equal((await cli(["runs", "--limit=0"], env)).status, 2);

  // logs: every node's lines in order; one node's; --json.
  const logs = await cli(["logs", run], env);
  t.equal(logs.status, 0, logs.stderr);
  const says = logs.stdout.split("\n").filter((l) => l !== "");
  t.match(says.find((l) => l.includes("hello, Ada")), LINE("hello", "say", "hello, Ada"));
  t.ok(says.findIndex((l) => l.includes("hello, Ada")) < says.findIndex((l) => l.includes("second node")), "in the order they were printed");
  const one = await cli(["logs", run, "more"], env);
  t.notMatch(one.stdout, /hello, Ada/);
  t.match(one.stdout, /second node/);
  const jl = (await cli(["logs", run, "say", "--json"], env)).stdout.trim().split("\n").map((l) => JSON.parse(l) as { node: string; text: string });
  t.ok(jl.some((l) => l.node === "say" && l.text === "hello, Ada"));
  const noNode = await cli(["logs", run, "nosuch"], env);
  t.equal(noNode.status, 1);
  t.match(noNode.stderr, /run [0-9A-Z]{26} has no node nosuch \(nodes: go, say, more\)/);

  // logs --follow of a live run, ended by cancel from another terminal: exit 1.
  const slow = (await cli(["trigger", "slow"], env)).stdout.trim();
  const following = cli(["logs", slow, "--follow"], env);
  await until(async () => ((await h.req("GET", `/runs/${slow}/nodes/wait/log`)).body as { lines: { text: string }[] }).lines.some((l) => l.text === "still waiting"), 20_000, "the slow task to print");
  const cancel = await cli(["cancel", slow], env);
  t.equal(cancel.status, 0, cancel.stderr);
  t.match(cancel.stdout, new RegExp(`cancelled run ${slow} \\(slow/1\\)`));
  const followed = await following;
  t.equal(followed.status, 1, "the followed run was cancelled: exit 1");
  t.match(followed.stdout, LINE("slow", "wait", "waiting"));
  t.match(followed.stdout, LINE("slow", "wait", "still waiting"));
  t.equal(followed.stdout.split("\n").filter((l) => l.endsWith("] still waiting")).length, 1, "a line is printed once");
  t.match(followed.stderr, /ended cancelled/);
  const again = await cli(["cancel", slow], env);
  t.equal(again.status, 1);
  t.match(again.stderr, /has already ended/);

  // Clear errors.
  const wrong = await cli(["runs", "--token=not-the-token"], { FLOE_SERVER: h.url });
  t.equal(wrong.status, 1);
  t.match(wrong.stderr, /floe runs: floe at http:\/\/127\.0\.0\.1:\d+ refused the token .*--token or FLOE_TOKEN/);
  const port = await freePort();
  const away = await cli(["runs"], { FLOE_SERVER: `http://127.0.0.1:${port}`, FLOE_TOKEN: "x" });
  t.equal(away.status, 1);
  t.match(away.stderr, new RegExp(`floe runs: can not reach floe at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  const unknown = await cli(["logs", "01ARZ3NDEKTSV4RRFFQ69G5FAV"], env);
  t.equal(unknown.status, 1);
  t.match(unknown.stderr, /floe logs: no run "01ARZ3NDEKTSV4RRFFQ69G5FAV"/);
  t.equal((await cli(["runs", "--server=ftp://x"], env)).status, 2);

  // Bash completion of a run id asks the host (floe on the PATH, FLOE_SERVER and FLOE_TOKEN set).
  const bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "floe"), `#!/bin/sh\nexec "${process.execPath}" "${floeBin}" "$@"\n`, { mode: 0o755 });
  writeFileSync(join(dir, "c.bash"), (await cli(["completion", "bash"])).stdout);
  const completed = spawnSync("bash", ["-c", `source ${join(dir, "c.bash")}; COMP_WORDS=(floe logs ${run.slice(0, 20)}); COMP_CWORD=2; _floe; echo "\${COMPREPLY[@]}"`], { encoding: "utf8", env: { ...process.env, ...env, PATH: `${bin}:${process.env["PATH"] ?? ""}` } });
  t.equal(completed.stdout.trim(), run, "a run id completes from the host's runs");

  // The token from <root>/admin-token when none is given.
  writeFileSync(join(dir, "admin-token"), `${h.token}\n`);
  const byRoot = await cli(["runs", `--root=${dir}`, "--limit=1"], { FLOE_SERVER: h.url });
  t.equal(byRoot.status, 0, byRoot.stderr);
});

t.test("pause, resume and rerun: arguments, and a server without those routes", async (t) => {
  for (const cmd of ["pause", "resume", "rerun", "cancel", "logs"]) {
    const r = await cli([cmd]);
    t.equal(r.status, 2, `${cmd} without a run is a usage error`);
    t.match(r.stderr, new RegExp(`floe ${cmd}: which run\\?[\\s\\S]*usage: floe ${cmd} RUN`));
    t.equal((await cli([cmd, "../etc"])).status, 2, `${cmd} with a bad run id`);
  }
  t.equal((await cli(["pause", "A1", "B2"])).status, 2, "one run at a time");
  t.equal((await cli(["rerun", "A1", "--from=Bad.Node"])).status, 2);
  t.equal((await cli(["rerun", "A1", "--bogus"])).status, 2);

  // A server answering as floe does for a route it lacks, and as DESIGN §6.3 says for one it has.
  const seen: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      seen.push(`${req.method ?? ""} ${req.url ?? ""} ${body} ${String(req.headers["x-floe-auth"])}`);
      if (req.url?.endsWith("/rerun") && req.url.startsWith("/custom/api/")) {
        res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ run: { flow: "f", ver: 1, run: "01NEWRUN0000000000000000AB", adoptedBy: "h1" } }));
        return;
      }
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "E_NOT_FOUND", message: `no route ${req.method ?? ""} ${req.url ?? ""}` } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}`;
  for (const cmd of ["pause", "resume", "rerun"]) {
    const r = await cli([cmd, "01ARZ3NDEKTSV4RRFFQ69G5FAV", `--server=${url}`, "--token=tk"]);
    t.equal(r.status, 1);
    t.match(r.stderr, new RegExp(`floe ${cmd}: floe at ${url} does not offer POST /runs/:id/${cmd} \\(an older floe`));
  }
  t.ok(seen.includes("POST /build/api/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/pause {} tk"), "POST /runs/:id/pause with the token");
  const rerun = await cli(["rerun", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--from=build", `--server=${url}/custom/api`, "--token=tk"]);
  t.equal(rerun.status, 0, rerun.stderr);
  t.equal(rerun.stdout.trim(), "01NEWRUN0000000000000000AB", "prints the new run's id");
  t.ok(seen.includes('POST /custom/api/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/rerun {"from":"build"} tk'), "a server path is the API's base; --from is sent");
});

t.test("floe completion bash|zsh", async (t) => {
  const bash = await cli(["completion", "bash"]);
  t.equal(bash.status, 0);
  t.match(bash.stdout, /complete -F _floe floe/);
  const dir = t.testdir({ "c.bash": bash.stdout });
  const complete = (words: string[]) =>
    spawnSync("bash", ["-c", `source ${join(dir, "c.bash")}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _floe; echo "\${COMPREPLY[@]}"`], { encoding: "utf8" }).stdout.trim();
  t.same(complete(["floe", "tr"]).split(" "), ["trigger"]);
  t.same(complete(["floe", "r"]).split(" ").sort(), ["rerun", "resume", "run", "runs"]);
  t.same(complete(["floe", "logs", "--f"]).split(" "), ["--follow"]);
  t.match(complete(["floe", "runs", "--"]), /--flow= .*--state= .*--server= .*--token=/);
  const zsh = await cli(["completion", "zsh"]);
  t.equal(zsh.status, 0);
  t.match(zsh.stdout, /^#compdef floe/);
  t.match(zsh.stdout, /'trigger:/);
  t.match(zsh.stdout, /--follow\[/);
  t.equal((await cli(["completion", "fish"])).status, 2);
  t.equal((await cli(["completion"])).status, 2);
});

t.test("--follow outlives a restart of the host it follows through", async (t) => {
  const dir = t.testdir({
    "flows.yml": `
flows:
  - id: long
    triggers: [{name: go, type: data}]
    tasks:
      - {name: step, type: exec, listen: trigger.good, opts: {shell: 'echo "step begins"; sleep 2; echo "step ends"'}}
`,
  });
  const port = await freePort();
  const start = () => startFloe({ conf: join(dir, "flows.yml"), root: join(dir, "root"), extra: [`--bind=127.0.0.1:${port}`] });
  let h = await start();
  t.teardown(() => h.kill9());
  const env = { FLOE_SERVER: h.url, FLOE_TOKEN: h.token };
  const run = (await cli(["trigger", "long"], env)).stdout.trim();
  const following = cliLive(["logs", run, "--follow"], env);
  await until(() => following.stdout().includes("step begins"), 20_000, "floe logs to print the task's first line");
  await h.kill9();
  h = await start();
  const r = await following.done;
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, LINE("long", "step", "step begins"));
  t.match(r.stderr, new RegExp(`run ${run} ended good`));
});
