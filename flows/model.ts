/**
 * The flow model: what a validated flow file means. Every value here is frozen; a run
 * keeps the exact Flow it started with even when the host reloads its config.
 */

export type NodeClass = "trigger" | "task" | "merge";
export type TriggerType = "data" | "timer" | "cron" | "poll-git" | "git-push" | "webhook";
export type TaskType = "exec" | "fetch" | "git-checkout" | "git-merge" | "data" | "timer" | "end" | "flow";
export type MergeType = "all" | "any";
export type QueueStrategy = "append" | "replace" | "debounce";
/** What a reload that changes a flow's definition does to its runs of the old one (hub/on-update.ts). */
export type OnUpdate = "keep" | "abort" | "drain";
export type OnHostLoss = "requeue" | "fail";
export type Role = "viewer" | "operator" | "admin";

export const TRIGGER_TYPES: readonly TriggerType[] = ["data", "timer", "cron", "poll-git", "git-push", "webhook"];
export const TASK_TYPES: readonly TaskType[] = ["exec", "fetch", "git-checkout", "git-merge", "data", "timer", "end", "flow"];
export const MERGE_TYPES: readonly MergeType[] = ["all", "any"];
export const ROLES: readonly Role[] = ["viewer", "operator", "admin"];

export type Opts = Readonly<Record<string, unknown>>;

export interface Retries {
  /** Retries after the first attempt. */
  readonly max: number;
  /** Delay before the first retry; it doubles for each next one. */
  readonly backoffMs: number;
}

interface NodeBase {
  readonly id: string;
  readonly name: string;
  readonly opts: Opts;
}

export interface TriggerNode extends NodeBase {
  readonly class: "trigger";
  readonly type: TriggerType;
}

export interface TaskNode extends NodeBase {
  readonly class: "task";
  readonly type: TaskType;
  readonly listen: string;
  /** Exit codes that count as success. */
  readonly good: readonly number[];
  readonly ignoreFail: boolean;
  readonly useStatus: boolean;
  readonly timeoutMs?: number;
  readonly retries?: Retries;
  /** Fan-out (hub/fan-out.ts): one instance per item, `artifacts` of the node whose event started it, or listed values. */
  readonly forEach?: "artifacts" | readonly string[];
  /** With forEach: at most this many instances at once (absent: all at once). */
  readonly parallel?: number;
}

export interface MergeNode extends NodeBase {
  readonly class: "merge";
  readonly type: MergeType;
  readonly wait: readonly string[];
}

export type FlowNode = TriggerNode | TaskNode | MergeNode;

/** Where a host reads a secret's value (common.secrets): a file's content or an environment variable. */
export type SecretSource = { readonly file: string } | { readonly env: string };

/** Results a run ends with, as `notify.on` names them. */
export const NOTIFY_RESULTS = ["good", "bad", "cancelled", "lost"] as const;
export type NotifyResult = (typeof NOTIFY_RESULTS)[number];
export const NOTIFY_FORMATS = ["json", "slack"] as const;
export type NotifyFormat = (typeof NOTIFY_FORMATS)[number];

/** One `notify` entry of a flow: where a run's end is POSTed. */
export interface NotifyTarget {
  readonly url: string;
  /** The name of a secret (common.secrets) whose value signs the body (X-Floe-Signature). */
  readonly secret?: string;
  /** The results that are sent. */
  readonly on: readonly NotifyResult[];
  /** `json` (floe's summary) or `slack` (a Slack incoming-webhook message). */
  readonly format: NotifyFormat;
}

/** How pending notifications are retried (common.notify). */
export interface NotifySettings {
  /** A delivery that has not succeeded this long after the run ended is given up. */
  readonly retryForMs: number;
  /** Delay before the first retry; it doubles each time, up to maxBackoffMs. */
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** The dashboard's address as the receivers' readers reach it (the run page's URL in a notification). */
  readonly pageUrl?: string;
}

export const DEFAULT_NOTIFY: NotifySettings = Object.freeze({ retryForMs: 24 * 3600_000, backoffMs: 2000, maxBackoffMs: 10 * 60_000 });

export interface Flow {
  readonly id: string;
  readonly ver: number;
  readonly name: string;
  readonly flowFile?: string;
  readonly reuseSpace: boolean;
  readonly hostTags: readonly string[];
  readonly resourceTags: readonly string[];
  /** `KEY=value` entries, unexpanded. */
  readonly env: readonly string[];
  readonly triggers: readonly TriggerNode[];
  /** Tasks and merges, in file order. */
  readonly tasks: readonly (TaskNode | MergeNode)[];
  /** At most this many active runs of this flow version at once. */
  readonly concurrency?: number;
  /** At most this many pending runs; what happens beyond is `queueStrategy`. */
  readonly queueLimit?: number;
  readonly queueStrategy: QueueStrategy;
  readonly onHostLoss: OnHostLoss;
  readonly timeoutMs?: number;
  /** Names of common.secrets its tasks get in their environment (absent: none). */
  readonly secrets?: readonly string[];
  /** Where the run's end is sent (absent: nowhere). */
  readonly notify?: readonly NotifyTarget[];
  /** `queue-strategy: debounce`: how long a trigger is held for a newer one to replace it. */
  readonly debounceMs?: number;
  /** Absent in runs recorded before it existed: `keep`. */
  readonly onUpdate?: OnUpdate;
}

export interface User {
  readonly name: string;
  readonly role: Role;
  /** `scrypt$N$r$p$salt$hash` (see `floe hash-password`). Never leaves the host. */
  readonly passwordHash: string;
}

export interface Retention {
  /** Archived runs kept per flow version. */
  readonly runs: number;
  /** Archived runs and workspaces older than this are pruned. */
  readonly maxAgeMs: number;
}

/** `common.artifacts`: limits of what tasks leave in `$FLOE_ARTIFACTS` (README, "Artifacts"). */
export interface ArtifactSettings {
  /** Largest artifact, in bytes. */
  readonly maxSize: number;
  /** Largest total of a run attempt's artifacts, in bytes. */
  readonly maxRunSize: number;
  /** An object no kept run references is removed only once it is older than this (its run's end may not be recorded yet). */
  readonly graceMs: number;
}

export interface Common {
  /** floe's peer list: accepted and ignored (clusters form over NATS). */
  readonly hosts: readonly string[];
  readonly baseUrl: string;
  /** As written; expanded (`~`, `%tmp`) by the host. */
  readonly workspaceRoot?: string;
  readonly storeRoot?: string;
  readonly gitKey?: string;
  readonly users: readonly User[];
  readonly retention: Retention;
  readonly artifacts: ArtifactSettings;
  /** Secrets defined on this host, by name (values are read by the host, never kept here). */
  readonly secrets?: Readonly<Record<string, SecretSource>>;
  readonly notify?: NotifySettings;
}

export interface Config {
  readonly common: Common;
  readonly flows: readonly Flow[];
}

export const DEFAULT_BASE_URL = "/build/api";
export const DEFAULT_RETENTION: Retention = Object.freeze({ runs: 200, maxAgeMs: 30 * 24 * 3600_000 });
export const DEFAULT_ARTIFACTS: ArtifactSettings = Object.freeze({ maxSize: 1024 ** 3, maxRunSize: 4 * 1024 ** 3, graceMs: 3600_000 });

export function flowKey(f: { readonly id: string; readonly ver: number }): string {
  return `${f.id}/${f.ver}`;
}

export function findNode(flow: Flow, id: string): FlowNode | undefined {
  return flow.triggers.find((n) => n.id === id) ?? flow.tasks.find((n) => n.id === id);
}

export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** The config of a host started without a config file: no flows of its own, every default. */
export const EMPTY_CONFIG: Config = deepFreeze({ common: { hosts: [], baseUrl: DEFAULT_BASE_URL, users: [], retention: DEFAULT_RETENTION, artifacts: DEFAULT_ARTIFACTS }, flows: [] });
