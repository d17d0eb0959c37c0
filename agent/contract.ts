/**
 * The contract between the hub and the agent: what a task is asked to do and what it
 * reports back. The hub decides *when* a task runs (routing, retries, end rules); the
 * agent decides *how* (processes, git, downloads) and never looks at a flow or a run.
 */

/** Node types the agent executes. `data`, `end` and merges are the hub's business. */
export type TaskType = "exec" | "git-checkout" | "git-merge" | "fetch" | "timer";

/** One line of task output. `sys` lines are written by floe itself (e.g. "in dir: …"). */
export interface TaskLine {
  /** Epoch milliseconds when the line was read. */
  readonly at: number;
  readonly text: string;
  readonly stream: "out" | "err" | "sys";
}

export interface TaskRequest {
  readonly runId: string;
  readonly flowId: string;
  readonly nodeId: string;
  /** The host executing the run (FLOE_HOST). */
  readonly host?: string;
  /** The run's attempt: 2 and up after a host loss requeued it (FLOE_ATTEMPT). */
  readonly attempt?: number;
  readonly type: TaskType;
  /**
   * The node's opts merged over the incoming event's opts (node wins), minus `env`.
   * Values are as in YAML: strings, numbers, booleans, arrays, string-keyed maps.
   */
  readonly opts: Readonly<Record<string, unknown>>;
  /**
   * `KEY=value` entries for the task's environment, in order, later wins: flow env,
   * node env, trigger/form values and upstream outputs. Already expanded for `{{ws}}`
   * and `./`; `$VAR` is left for the task's shell. The host environment is added by the
   * agent, underneath these.
   */
  readonly env: readonly string[];
  /** Absolute path of the run's workspace; it exists. */
  readonly workspace: string;
  /** Absolute path of this host's download cache; the agent may create it. */
  readonly cacheDir: string;
  /**
   * Aborted on cancel or timeout. `signal.reason` (an Error) says why; the agent kills
   * the task's whole process group and reports that reason.
   */
  readonly signal: AbortSignal;
  /** Called for each output line, in order. Must not throw. */
  readonly onLine: (line: TaskLine) => void;
  /** Called once the task's process group exists, so the hub can record it for crash recovery. */
  readonly onStart?: (info: { readonly pid: number; readonly pgid: number }) => void;
}

export interface TaskResult {
  /** Exit status; -1 when killed by a signal. */
  readonly status: number;
  /**
   * Set when the task could not run at all (missing option, command not found, download
   * refused, bad checksum syntax…): the hub emits `task.<id>.error`.
   */
  readonly error?: string;
  /** Why the task ended badly, in words (timeout, cancelled, killed by SIGKILL, …). */
  readonly reason?: string;
  /** `key=value` pairs the task wrote to `$FLOE_OUTPUT`. */
  readonly outputs: Readonly<Record<string, string>>;
}

export type TaskRunner = (req: TaskRequest) => Promise<TaskResult>;

/** What a program the host runs for itself printed, and how it ended. */
export interface SystemCommandResult {
  readonly status: number;
  /** Set when it could not run at all. */
  readonly error?: string;
  /** stderr and stdout lines, in order. */
  readonly output: readonly string[];
}

/**
 * What the hub asks of its host's system besides tasks, all through the agent (spawned by
 * the spawn helper, never forked from the host's main thread). Implemented by
 * agent/host-commands.ts and handed to the hub by cmd/.
 */
export interface HostCommands {
  /**
   * SIGKILLs process group `pgid` if a process of it still belongs to run `runId` (the
   * number may have been reused since it was recorded); true when something was killed.
   */
  killTaskGroup(pgid: number, runId: string): Promise<boolean>;
  /** Runs one of the system's programs (`rm`, `chattr`): from `/`, with only PATH and the C locale. */
  system(cmd: string, args: readonly string[]): Promise<SystemCommandResult>;
  /** `git ls-remote` for poll triggers: bounded, in its own process group, never throwing. */
  lsRemote(o: LsRemoteOptions): Promise<LsRemoteResult>;
}

export type LsRemoteResult =
  | { readonly ok: true; readonly refs: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly error: string; readonly stopped: boolean };

export interface LsRemoteOptions {
  readonly url: string;
  readonly patterns: readonly string[];
  readonly timeoutMs: number;
  /** Stops the call (the poller stopping): the process group is killed. */
  readonly signal: AbortSignal;
  /** An ssh private key for ssh URLs (common.git-key). */
  readonly gitKey?: string;
  /** @defaultValue 1000 */
  readonly killGraceMs?: number;
}
