/**
 * `flow-file`: a flow whose tasks live in another file, loaded when the flow is triggered.
 * The file can be a local path (relative to the config file's folder), an http(s) URL, or
 * a git reference: `git@host:org/repo.git/path/FLOE.yml` or `https://host/org/repo.git/path`
 * (also `ssh://` and `file://`), optionally ending in `#ref` (a branch, tag or commit).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { promisify } from "node:util";
import type { Diagnostic } from "./diagnostics.js";
import { deepFreeze, type Flow } from "./model.js";
import { parseFlowText } from "./parse.js";
import { errorCode, errorMessage } from "./errors.js";
import { gitSshCommand } from "./git-ssh.js";

const run = promisify(execFile);
const MAX_BYTES = 1 << 20;
const TIMEOUT_MS = 60_000;

export type FlowFileKind = "local" | "web" | "git";

export interface GitRef {
  readonly repo: string;
  readonly path: string;
  readonly ref?: string;
}

export function flowFileKind(ref: string): FlowFileKind {
  if (ref.startsWith("git@") || (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref) && ref.includes(".git/"))) return "git";
  if (/^https?:\/\//i.test(ref)) return "web";
  return "local";
}

export function parseGitRef(ref: string): GitRef | undefined {
  const hash = ref.lastIndexOf("#");
  const body = hash >= 0 ? ref.slice(0, hash) : ref;
  const at = body.indexOf(".git/");
  if (at < 0) return undefined;
  const path = body.slice(at + 5);
  if (path === "") return undefined;
  const gitRef = hash >= 0 ? ref.slice(hash + 1) : "";
  return { repo: body.slice(0, at + 4), path, ...(gitRef !== "" ? { ref: gitRef } : {}) };
}

export class FlowFileError extends Error {
  constructor(
    message: string,
    readonly diagnostics: readonly Diagnostic[] = [],
  ) {
    super(message);
    this.name = "FlowFileError";
  }
}

export interface LoadOptions {
  /** Folder that relative local paths are resolved against (the config file's folder). */
  readonly baseDir: string;
  readonly gitKey?: string;
  readonly signal?: AbortSignal;
}

/** The text of a flow-file, wherever it lives. Throws FlowFileError with the reason. */
export async function readFlowFile(ref: string, o: LoadOptions): Promise<{ text: string; name: string }> {
  const signal = AbortSignal.any([AbortSignal.timeout(TIMEOUT_MS), ...(o.signal ? [o.signal] : [])]);
  switch (flowFileKind(ref)) {
    case "local": {
      // join, not resolve: a relative config path gives a relative flow-file path in messages.
      const path = isAbsolute(ref) ? ref : join(o.baseDir, ref);
      let st: Stats;
      try {
        st = await stat(path);
      } catch (e) {
        throw new FlowFileError(`can not read flow-file ${path}: ${errorCode(e) ?? errorMessage(e)}`);
      }
      // Never read a device or a FIFO (/dev/zero would never end), nor a file no flow fills.
      if (!st.isFile()) throw new FlowFileError(`flow-file ${path} is not a regular file`);
      if (st.size > MAX_BYTES) throw new FlowFileError(`flow-file ${path} is larger than ${MAX_BYTES} bytes`);
      try {
        return { text: await readFile(path, { encoding: "utf8", signal }), name: path };
      } catch (e) {
        throw new FlowFileError(`can not read flow-file ${path}: ${errorCode(e) ?? errorMessage(e)}`);
      }
    }
    case "web": {
      let res: Response;
      try {
        res = await fetch(ref, { signal, redirect: "follow" });
      } catch (e) {
        throw new FlowFileError(`can not download flow-file ${ref}: ${errorMessage(e instanceof Error && e.cause instanceof Error ? e.cause : e)}`);
      }
      if (!res.ok) throw new FlowFileError(`can not download flow-file ${ref}: ${res.status} ${res.statusText}`);
      const buf = Buffer.from(await res.arrayBuffer());
      if (buf.length > MAX_BYTES) throw new FlowFileError(`flow-file ${ref} is larger than ${MAX_BYTES} bytes`);
      return { text: buf.toString("utf8"), name: ref };
    }
    case "git":
      return readFromGit(ref, o, signal);
  }
}

async function readFromGit(ref: string, o: LoadOptions, signal: AbortSignal): Promise<{ text: string; name: string }> {
  const g = parseGitRef(ref);
  if (g === undefined) throw new FlowFileError(`flow-file ${ref} is not a git reference of the form <repo>.git/<path>[#ref]`);
  const dir = await mkdtemp(join(tmpdir(), "floe-flowfile-"));
  const env = {
    ...process.env,
    GIT_TERMINAL_PROMPT: "0",
    ...(o.gitKey ? { GIT_SSH_COMMAND: gitSshCommand(o.gitKey) } : {}),
  };
  const git = (args: string[]) => run("git", args, { cwd: dir, env, signal, maxBuffer: MAX_BYTES * 2 });
  try {
    try {
      await git(["clone", "--quiet", "--depth", "1", "--no-checkout", ...(g.ref ? ["--branch", g.ref] : []), g.repo, "r"]);
    } catch (e) {
      if (g.ref === undefined) throw e;
      // A commit hash is not a --branch: fetch everything and look it up.
      await git(["clone", "--quiet", "--no-checkout", g.repo, "r"]);
    }
    const { stdout } = await run("git", ["-C", join(dir, "r"), "show", `${g.ref ?? "HEAD"}:${g.path}`], { env, signal, maxBuffer: MAX_BYTES * 2 });
    return { text: stdout, name: ref };
  } catch (e) {
    // execFile's error carries what git said on stderr: the reason, where there is one.
    const stderr = e instanceof Error && "stderr" in e && typeof e.stderr === "string" ? e.stderr.trim() : "";
    const msg = stderr || errorMessage(e);
    throw new FlowFileError(`can not read flow-file ${ref} from git: ${msg.split("\n").slice(-2).join(" ")}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The flow as it will run: the config's flow with the flow-file's definition laid over it.
 * Like floe: triggers, id and ver stay the config's. Unlike floe: only keys the file sets
 * replace the config's (floe always reset reuse-space), and the config is not mutated.
 */
export function overlayFlowFile(base: Flow, file: Flow, keys: ReadonlySet<string>): Flow {
  const pick = <K extends keyof Flow>(yamlKey: string, k: K): Partial<Flow> => (keys.has(yamlKey) ? { [k]: file[k] } : {});
  return deepFreeze({
    ...base,
    ...(file.name !== "" && keys.has("name") ? { name: file.name } : {}),
    ...pick("reuse-space", "reuseSpace"),
    ...pick("host-tags", "hostTags"),
    ...pick("resource-tags", "resourceTags"),
    ...pick("env", "env"),
    ...pick("tasks", "tasks"),
    ...pick("concurrency", "concurrency"),
    ...pick("queue-limit", "queueLimit"),
    ...pick("queue-strategy", "queueStrategy"),
    ...pick("on-host-loss", "onHostLoss"),
    ...pick("timeout", "timeoutMs"),
    ...pick("debounce", "debounceMs"),
    ...pick("on-update", "onUpdate"),
  });
}

/** Loads and overlays the flow-file of `flow` (if it has one). */
export async function resolveFlow(flow: Flow, o: LoadOptions): Promise<Flow> {
  if (flow.flowFile === undefined) return flow;
  const { text, name } = await readFlowFile(flow.flowFile, o);
  const parsed = parseFlowText(text, name);
  if (parsed.flow === undefined) {
    const first = parsed.diagnostics.find((d) => d.severity === "error");
    throw new FlowFileError(`flow-file ${name} of flow ${flow.id} is invalid${first ? `: ${first.line}:${first.col}: ${first.message}` : ""}`, parsed.diagnostics);
  }
  return overlayFlowFile(flow, parsed.flow, parsed.keys);
}
