/**
 * README, the single host: the blocks marked quick-start, api, webhook and accounts, run as
 * written against a host started as `npm start` starts one (package.json's start script,
 * from the repository), with HOME set to a temporary directory (so `~/.floe` is a fresh
 * root) and FLOE_BIND moving it to a free port; 8080 in the blocks is replaced by that
 * port, and `floe` is the built CLI (a shell function, as `npm link` would make it).
 * In the api and webhook blocks each command is checked on its own against what the README
 * says it answers; every curl of theirs gets `-w` appended, to see the HTTP status too.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { verifyPassword } from "../../hub/api/passwords.js";
import { freePort } from "../helpers/servers.js";
import { floeBin, repoRoot } from "../helpers/paths.js";
import { api, commandsOf, eventually, missingPrograms, readmeBlock, ShellSession } from "./readme.js";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const STATUS = "@@status";

type Json = Record<string, unknown>;
type RunView = { ref: { run: string; flow: string }; state: string; result?: string };

function skipReason(): string | false {
  const missing = missingPrograms(["bash", "curl", "jq", "openssl"]);
  return missing.length > 0 ? `the README's commands need ${missing.join(", ")}` : false;
}

/** A curl answer with the status the appended `-w` printed: the body parsed as JSON when it is. */
function answer(output: string): { status: number | undefined; text: string; json: Json | undefined } {
  const at = output.lastIndexOf(STATUS);
  const text = (at < 0 ? output : output.slice(0, at)).trim();
  const status = at < 0 ? undefined : Number(output.slice(at + STATUS.length).trim());
  let json: Json | undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) json = v as Json;
  } catch {
    // not JSON
  }
  return { status, text, json };
}

/** One check per README command, found by what the command says; each must be used once. */
interface Check {
  readonly what: RegExp;
  /** Exit statuses the command may end with besides 0 (curl --max-time: 28). */
  readonly mayFail?: number;
  check(t: Test, out: string): Promise<void> | void;
}

t.test("the single-host blocks of the README work as written", { skip: skipReason() }, async (t) => {
  const home = t.testdir({});
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("FLOE_")) env[k] = v;
  Object.assign(env, { HOME: home, FLOE_BIND: `127.0.0.1:${port}` });

  // `npm start`, as package.json has it (node is this node).
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: { start: string } };
  const [cmd, ...args] = pkg.scripts.start.split(" ");
  t.equal(cmd, "node", "npm start runs node");
  const host = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  host.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  host.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => host.once("exit", () => r()));
  t.teardown(async () => {
    host.kill("SIGKILL");
    await exited;
  });
  const base = `http://127.0.0.1:${port}/build/api`;
  await eventually(async () => out.includes("floe: dashboard"), 30_000, `the host to start:\n${out}`);
  const tokenPath = join(home, ".floe", "admin-token");
  t.match(out, `floe: dashboard http://127.0.0.1:${port}/app/dash — log in with the admin token in ${tokenPath} or a user of common.users`, "it prints the dashboard address and where the admin token is kept");
  const token = readFileSync(tokenPath, "utf8").trim();

  const shell = new ShellSession(home, { cwd: home, env, setup: `floe() { ${JSON.stringify(process.execPath)} ${JSON.stringify(floeBin)} "$@"; }` });
  t.teardown(() => shell.close());
  const withPort = (s: string) => s.replace(/\b8080\b/g, String(port));
  const runBlock = async (name: string) => {
    const r = await shell.run(withPort(readmeBlock(name)));
    t.same(r.failures, [], `every command of block ${name} succeeds`);
    return r.output;
  };
  const runChecked = async (name: string, checks: readonly Check[]) => {
    const used = new Set<Check>();
    for (const command of commandsOf(readmeBlock(name))) {
      const found = checks.filter((c) => c.what.test(command));
      t.equal(found.length, 1, `block ${name}: one check for ${command}`);
      const c = found[0];
      if (c === undefined) continue;
      used.add(c);
      // The status goes before a trailing comment (" # …"), which would swallow it.
      const sent = /^curl /.test(command) ? `${command.replace(/\s+#\s.*$/, "")} -w '\\n${STATUS} %{http_code}\\n'` : command;
      const r = await shell.run(withPort(sent));
      const allowed = r.failures.filter((f) => c.mayFail === undefined || !f.startsWith(`${c.mayFail}:`));
      t.same(allowed, [], `${command} succeeds`);
      await t.test(command.split("\n")[0] ?? command, async (t) => c.check(t, r.output));
    }
    t.equal(used.size, checks.length, `block ${name}: every check was used`);
  };

  // Quick start: a greet run and its log.
  const greeted = await runBlock("quick-start");
  t.same(greeted.split("\n").filter((l) => l !== ""), ["hello, Ada", "hello, Ada"], "the greet run printed hello, Ada twice");

  // The HTTP API, command by command.
  const released: { run?: string } = {};
  await runChecked("api", [
    { what: /^H=/, check: (t, out) => t.equal(out, "") },
    { what: /^T=/, check: (t, out) => t.equal(out, "") },
    {
      what: /\/healthz/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        t.match(a.json, { ok: true, state: "running", host: String }, "ok, running, and the host's name");
      },
    },
    {
      what: /\/login/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200, "ada logs in with the example config's demo password");
        t.match(a.json, { token: String, user: "ada", role: "viewer" });
      },
    },
    {
      what: /\$H\/flows -H/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        const flows = (a.json?.["flows"] ?? []) as Json[];
        t.ok(flows.some((f) => f["id"] === "greet"), "the example flows are listed");
        for (const f of flows) t.ok("triggers" in f && "runs" in f, `flow ${String(f["id"])} shows its triggers and run counts`);
      },
    },
    {
      what: /\$H\/flows\/greet -H/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        t.ok(a.json !== undefined && "flow" in a.json && "versions" in a.json && "recent" in a.json, "the flow, its versions and recent runs");
      },
    },
    {
      what: /-X POST \$H\/flows\/greet\/runs/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 201, "201");
        const run = a.json?.["run"] as Json | undefined;
        const ref = run?.["ref"] as Json | undefined;
        t.match(ref, { flow: "greet", ver: 1 }, 'the answer is {"run": {"ref": {"flow", "ver", "run", …}, …}}');
        t.match(String(ref?.["run"]), ULID, "the run id is a ULID");
        t.type(run?.["state"], "string");
      },
    },
    {
      what: /^RUN=/,
      check: async (t) => {
        const id = await shell.variable("RUN");
        t.match(id, ULID, "RUN holds the newest run's id");
        await eventually(async () => ((await api(base, token, "GET", `/runs/${id}`)).body as RunView).state === "archived", 30_000, "the greet run to end");
      },
    },
    {
      what: /state=archived/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        const runs = (a.json?.["runs"] ?? []) as RunView[];
        t.ok(runs.length >= 2, "both greet runs, archived");
        t.ok(runs.every((r) => r.state === "archived" && r.ref.flow === "greet"));
      },
    },
    {
      what: /\$H\/runs\/\$RUN -H/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        t.match(a.json, { state: "archived", result: "good", attempt: 1, ref: { execHost: String }, nodes: Array });
      },
    },
    {
      what: /nodes\/hello\/log/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        const lines = (a.json?.["lines"] ?? []) as Json[];
        t.same(
          lines.filter((l) => l["stream"] === "out").map((l) => l["text"]),
          ["hello, Ada", "hello, Ada"],
        );
        for (const l of lines) t.match(l, { seq: Number, at: Number, text: String, stream: String });
        t.equal(a.json?.["live"], false, "the run has ended");
      },
    },
    {
      what: /\/events\?/,
      mayFail: 28,
      check: (t, out) => {
        t.match(out, /^event: run$/m, "run events");
        t.match(out, /^event: node$/m, "node events");
        t.match(out, /^event: log$/m, "log events");
        t.match(out, /^data: .*hello, Ada/m, "with the run's output");
      },
    },
    {
      what: /^REL=/,
      check: async (t) => {
        const id = await shell.variable("REL");
        t.match(id, ULID);
        released.run = id;
      },
    },
    { what: /^sleep 3/, check: (t, out) => t.equal(out, "") },
    {
      what: /nodes\/approve\/data/,
      check: async (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200, `the form was open: ${a.text}`);
        t.match(a.json, { node: { id: "approve" } });
        const id = released.run ?? "";
        await eventually(async () => ((await api(base, token, "GET", `/runs/${id}`)).body as RunView).state === "archived", 30_000, "the release to end");
        t.equal(((await api(base, token, "GET", `/runs/${id}`)).body as RunView).result, "good");
        const log = (await api(base, token, "GET", `/runs/${id}/nodes/deploy/log`)).body as { lines: { text: string }[] };
        t.ok(log.lines.some((l) => l.text === "deploying 1.0.0, approved by ada"), "the deploy ran, approved by ada");
      },
    },
    { what: /^MIG=/, check: async (t) => t.match(await shell.variable("MIG"), ULID) },
    {
      what: /\/cancel/,
      check: async (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        t.match(a.json, { run: { ref: { flow: "migrate" } } });
        const id = await shell.variable("MIG");
        // The answer may come while the run is still ending (its task being killed).
        await eventually(async () => ((await api(base, token, "GET", `/runs/${id}`)).body as RunView).state === "archived", 30_000, "the cancelled run to end");
        t.equal(((await api(base, token, "GET", `/runs/${id}`)).body as RunView).result, "cancelled");
      },
    },
    {
      what: /\$H\/hosts/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        t.match(a.json, { hosts: [{ up: true }] });
      },
    },
    {
      what: /\$H\/metrics/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 200);
        t.match(a.text, /^floe_runs\{state="active"\} \d+$/m);
      },
    },
  ]);

  // Trying a push by hand: a signed push starts the ci flow; a changed body is refused.
  await runChecked("webhook", [
    { what: /^H=/, check: (t, out) => t.equal(out, "") },
    { what: /^body=/, check: (t, out) => t.equal(out, "") },
    { what: /^sig=/, check: async (t) => t.match(await shell.variable("sig"), /^[0-9a-f]{64}$/) },
    {
      what: /-d "\$body"$/,
      check: async (t, out) => {
        const a = answer(out);
        t.equal(a.status, 201, `a run started: ${a.text}`);
        const id = String(((a.json?.["run"] as Json | undefined)?.["ref"] as Json | undefined)?.["run"]);
        await eventually(async () => ((await api(base, token, "GET", `/runs/${id}`)).body as RunView).state === "archived", 30_000, "the ci run to end");
        const log = (await api(base, token, "GET", `/runs/${id}/nodes/show/log`)).body as { lines: { text: string; stream: string }[] };
        t.same(
          log.lines.filter((l) => l.stream === "out").map((l) => l.text),
          ["would check out https://git.example.com/org/app.git at 4b825dc642cb6eb9a060e54bf8d69288fbee4904"],
          "the task sees the pushed URL and commit",
        );
      },
    },
    {
      what: /body\/main\/evil/,
      check: (t, out) => {
        const a = answer(out);
        t.equal(a.status, 401);
        t.match(a.json, { error: { code: "E_SIGNATURE" } });
      },
    },
  ]);

  // Accounts: the demo account's password, hashed as the README says; short ones refused.
  const hashed = (await runBlock("accounts")).trim();
  t.match(hashed, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, "a scrypt hash");
  t.ok(await verifyPassword("analytical-engine", hashed), "it verifies the password it was made from");
  const example = readFileSync(join(repoRoot, "flows", "examples", "flows.yml"), "utf8");
  const adaHash = /name: ada, role: viewer, password-hash: "([^"]+)"/.exec(example)?.[1] ?? "";
  t.ok(await verifyPassword("analytical-engine", adaHash), "the example config's ada has that password");
  const short = await shell.run("echo -n 's3cret' | floe hash-password");
  t.match(short.output, "the password must have at least 8 characters");
  t.match(short.failures.join("\n"), /^2:/, "a password under 8 characters is refused, exit 2");
});
