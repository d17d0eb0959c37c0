/**
 * Running the README's shell blocks as a reader would: a block marked with
 * `<!-- test: NAME -->` on the line before its ```sh fence is found by name, and blocks
 * run one after another in one bash session, so a variable one block sets (T, run) is
 * there for the next, as in a terminal. Each block runs with stdin from /dev/null, stderr
 * into stdout, and pipefail: every command that fails (curl in a pipe too) is reported.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../helpers/paths.js";

export const readmePath = join(repoRoot, "README.md");

/** The text of the block (sh, yaml…) marked `<!-- test: name -->`; throws when there is none (the README lost it). */
export function readmeBlock(name: string, readme = readFileSync(readmePath, "utf8")): string {
  const marker = `<!-- test: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no block marked ${marker}`);
  const rest = readme.slice(at + marker.length).replace(/^[ \t]*\n/, "");
  const fence = /^```[a-z]*\n/.exec(rest);
  const end = rest.indexOf("\n```\n");
  if (fence === null || end < 0) throw new Error(`the marker ${marker} is not followed by a fenced block`);
  return rest.slice(fence[0].length, end + 1);
}

/**
 * A block's commands, one string each: a line with its `\`-continued lines, without
 * comment-only and empty lines. Used where each command's answer is checked on its own.
 */
export function commandsOf(block: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (const line of block.split("\n")) {
    if (cur === "" && (line.trim() === "" || line.trim().startsWith("#"))) continue;
    cur += (cur === "" ? "" : "\n") + line;
    if (!/\\\s*$/.test(line)) {
      out.push(cur);
      cur = "";
    }
  }
  if (cur !== "") out.push(cur);
  return out;
}

/** Which programs of the system are missing (for a visible skip). */
export function missingPrograms(names: readonly string[]): string[] {
  return names.filter((n) => spawnSync("sh", ["-c", `command -v ${n}`], { stdio: "ignore" }).status !== 0);
}

const FAILED = "@@failed";

export interface BlockResult {
  /** What the block printed (stdout and stderr). */
  readonly output: string;
  /** Commands that exited non-zero, as "status: command". */
  readonly failures: readonly string[];
}

export class ShellSession {
  private readonly child: ChildProcess;
  private out = "";
  private waiter: (() => void) | undefined;
  private seq = 0;

  /** `setup` runs first, invisibly: shell functions and variables a reader would have (floe on the PATH). */
  constructor(
    private readonly dir: string,
    opts: { cwd: string; env: NodeJS.ProcessEnv; setup?: string },
  ) {
    this.child = spawn("bash", ["--noprofile", "--norc"], { cwd: opts.cwd, env: opts.env, stdio: ["pipe", "pipe", "pipe"] });
    const take = (d: Buffer) => {
      this.out += d.toString();
      this.waiter?.();
    };
    this.child.stdout?.on("data", take);
    this.child.stderr?.on("data", take);
    this.child.once("exit", () => this.waiter?.());
    // Every failing command is named in the output, so a block can not fail half-way unseen.
    this.child.stdin?.write(`exec 2>&1\nset -o pipefail\ntrap 'echo "${FAILED} $?: $BASH_COMMAND"' ERR\n${opts.setup ?? ""}\n`);
  }

  /** Runs `script` in the session (as `source`, so its variables stay); its output once it is done. */
  async run(script: string, timeoutMs = 60_000): Promise<BlockResult> {
    const n = ++this.seq;
    const file = join(this.dir, `block-${n}.sh`);
    writeFileSync(file, script);
    const done = `@@done ${n}`;
    const start = this.out.length;
    this.child.stdin?.write(`source ${JSON.stringify(file)} </dev/null\necho; echo "${done}"\n`);
    const deadline = Date.now() + timeoutMs;
    while (!this.out.slice(start).includes(done)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`the shell exited while running:\n${script}\n${this.out.slice(start)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the block did not finish in ${timeoutMs} ms:\n${script}\noutput so far:\n${this.out.slice(start)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    const text = this.out.slice(start, start + this.out.slice(start).indexOf(done)).replace(/\n$/, "");
    const failures = text
      .split("\n")
      .filter((l) => l.startsWith(FAILED))
      .map((l) => l.slice(FAILED.length + 1));
    const output = text
      .split("\n")
      .filter((l) => !l.startsWith(FAILED))
      .join("\n");
    return { output, failures };
  }

  /** The value of a shell variable of the session. */
  async variable(name: string): Promise<string> {
    return (await this.run(`printf '%s\\n' "$${name}"`)).output.trim();
  }

  close(): void {
    this.child.stdin?.end();
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

/** Lines of output that parse as JSON objects (jq -c prints one per line). */
export function jsonLines(output: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) out.push(v as Record<string, unknown>);
    } catch {
      // not JSON: a line of text
    }
  }
  return out;
}

/** Polls `cond` every 200 ms (each poll may be an HTTP request) until it holds. */
export async function eventually(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A JSON request to a host, with a token. */
export async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "x-floe-auth": token, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics): keep the text
  }
  return { status: res.status, body: parsed };
}
