/**
 * Every key of the flow file format in one table: its type, meaning and allowed values.
 * The parser uses it to check types and to name unknown keys ("did you mean …?"); the
 * JSON Schema shipped for editors is generated from it, so the two cannot drift apart.
 */
import { MERGE_TYPES, NOTIFY_FORMATS, ROLES, TASK_TYPES, TRIGGER_TYPES } from "./model.js";

export type KeyKind =
  | { readonly t: "string" }
  | { readonly t: "int"; readonly min?: number }
  | { readonly t: "bool" }
  | { readonly t: "duration" }
  | { readonly t: "enum"; readonly values: readonly string[] }
  | { readonly t: "strings" }
  | { readonly t: "ints" }
  | { readonly t: "map" }
  | { readonly t: "object"; readonly of: SpecName }
  | { readonly t: "list"; readonly of: SpecName }
  /** `for-each`: the word `artifacts`, or a list of values (text, numbers or booleans, read as text). */
  | { readonly t: "items" };

export interface KeySpec {
  readonly kind: KeyKind;
  readonly doc: string;
  readonly required?: boolean;
}

export type SpecName = "config" | "common" | "flow" | "flowFile" | "node" | "retries" | "user" | "retention" | "artifacts" | "notify" | "notifySettings" | "secret";

const str = { t: "string" } as const;
const bool = { t: "bool" } as const;
const strings = { t: "strings" } as const;
const duration = { t: "duration" } as const;

const flowKeys = {
  id: { kind: str, doc: "URL-friendly id; derived from name when absent." },
  ver: { kind: { t: "int", min: 1 }, doc: "Version; (id, ver) names one version of the flow. Default 1." },
  name: { kind: str, doc: "Display name; derived from id when absent." },
  "flow-file": { kind: str, doc: "Load the flow's tasks from a local path, an http(s) URL or a git reference (…repo.git/path/FLOE.yml#ref) at trigger time." },
  "reuse-space": { kind: bool, doc: "Keep one workspace for all runs of this flow; its runs are serialised." },
  "host-tags": { kind: strings, doc: "Runs only on hosts whose tags include all of these." },
  "resource-tags": { kind: strings, doc: "Shared resources: no two active runs in the cluster hold the same tag at once." },
  env: { kind: strings, doc: "KEY=value entries for every exec task; {{ws}} and ./ expand to the workspace." },
  triggers: { kind: { t: "list", of: "node" }, doc: "Trigger nodes: data, timer, cron, poll-git, git-push, webhook." },
  tasks: { kind: { t: "list", of: "node" }, doc: "Task nodes, and merges (class: merge)." },
  concurrency: { kind: { t: "int", min: 1 }, doc: "At most this many active runs of this flow at once." },
  "queue-limit": { kind: { t: "int", min: 0 }, doc: "At most this many pending runs of this flow." },
  "queue-strategy": { kind: { t: "enum", values: ["append", "replace", "debounce"] }, doc: "When the queue is full: append refuses the new trigger, replace drops the oldest pending run; debounce holds each trigger for `debounce`, a newer one replacing it." },
  debounce: { kind: duration, doc: "With queue-strategy: debounce, how long a trigger waits for a newer one of the same flow (e.g. 5s); one run starts when the window passes quietly." },
  "on-update": { kind: { t: "enum", values: ["keep", "abort", "drain"] }, doc: "When a reload changes this flow: keep its runs of the old definition, abort them, or drain them (new runs wait until they have ended)." },
  "on-host-loss": { kind: { t: "enum", values: ["requeue", "fail"] }, doc: "When the host running a run dies: requeue it as a new attempt, or end it lost." },
  timeout: { kind: duration, doc: "End the run bad after this long (e.g. 90s, 15m, 2h)." },
  secrets: { kind: strings, doc: "Names of common.secrets its tasks get as environment variables; their values are masked as *** wherever floe writes or shows text." },
  notify: { kind: { t: "list", of: "notify" }, doc: "Where the run's summary is POSTed when it ends with a listed result." },
} as const satisfies Record<string, KeySpec>;

export const SPECS: Readonly<Record<SpecName, Readonly<Record<string, KeySpec>>>> = {
  config: {
    common: { kind: { t: "object", of: "common" }, doc: "Settings shared by every flow of this host." },
    flows: { kind: { t: "list", of: "flow" }, doc: "The flows this host knows." },
  },
  common: {
    hosts: { kind: strings, doc: "floe's peer list: accepted and ignored; floe hosts form a cluster over NATS and Redis." },
    "base-url": { kind: str, doc: "API prefix. Default /build/api." },
    "workspace-root": { kind: str, doc: "Root for workspaces (~ and %tmp expand). Default: the host's --root." },
    "store-type": { kind: { t: "enum", values: ["memory", "local"] }, doc: "floe's store choice: accepted and ignored (state is always kept in files under --root)." },
    "store-root": { kind: str, doc: "Root for run files and the download cache. Default: the host's --root." },
    "git-key": { kind: str, doc: "Path of an SSH key for git tasks and git polling." },
    users: { kind: { t: "list", of: "user" }, doc: "Accounts that may log in to the API and dashboard." },
    retention: { kind: { t: "object", of: "retention" }, doc: "How long archived runs and their workspaces are kept." },
    artifacts: { kind: { t: "object", of: "artifacts" }, doc: "Limits of the files tasks leave in $FLOE_ARTIFACTS, and how long an unreferenced object is kept." },
    secrets: { kind: { t: "map" }, doc: "Secrets of this host: NAME: {file: PATH} or NAME: {env: VAR}; read at start and on SIGHUP." },
    notify: { kind: { t: "object", of: "notifySettings" }, doc: "How notifications that fail are retried." },
  },
  flow: flowKeys,
  flowFile: flowKeys,
  node: {
    id: { kind: str, doc: "Unique within the flow; derived from name when absent." },
    name: { kind: str, doc: "Display name; derived from id when absent." },
    class: { kind: { t: "enum", values: ["trigger", "task", "merge"] }, doc: "Defaults to trigger under triggers and task under tasks." },
    type: { kind: str, doc: `Trigger: ${TRIGGER_TYPES.join(", ")}. Task: ${TASK_TYPES.join(", ")}. Merge: ${MERGE_TYPES.join(", ")} (default all).` },
    listen: { kind: str, doc: "Task: the event tag that starts it, e.g. trigger.good, task.build.good, merge.tests.good." },
    wait: { kind: strings, doc: "Merge: the event tags it waits for." },
    good: { kind: { t: "ints" }, doc: "Exit codes that count as success. Default [0]." },
    "ignore-fail": { kind: bool, doc: "Always emit good." },
    "use-status": { kind: bool, doc: "Emit task.<id>.<exit code> instead of good/bad." },
    opts: { kind: { t: "map" }, doc: "Type-specific options (cmd, shell, args, url, form, period, cron, …)." },
    timeout: { kind: duration, doc: "Task: end it bad after this long; its process group is killed." },
    retries: { kind: { t: "object", of: "retries" }, doc: "Task: retry a failed attempt." },
    "for-each": { kind: { t: "items" }, doc: "Task: run it once per item: `artifacts` (each artifact of the node whose event started it) or a list of values. Each instance gets FLOE_ITEM and FLOE_ITEM_NAME; the task emits one event when all have ended." },
    parallel: { kind: { t: "int", min: 1 }, doc: "Task with for-each: at most this many instances at once. Default: all at once." },
  },
  retries: {
    max: { kind: { t: "int", min: 0 }, doc: "Retries after the first attempt.", required: true },
    backoff: { kind: duration, doc: "Delay before the first retry, doubling each time. Default 1s." },
  },
  user: {
    name: { kind: str, doc: "Login name.", required: true },
    role: { kind: { t: "enum", values: ROLES }, doc: "viewer reads; operator also starts, cancels and fills forms; admin does everything.", required: true },
    "password-hash": { kind: str, doc: "scrypt hash printed by `floe hash-password`.", required: true },
  },
  notify: {
    url: { kind: str, doc: "The http(s) URL the run's summary is POSTed to.", required: true },
    secret: { kind: str, doc: "The name of a secret of common.secrets: the body is signed X-Floe-Signature: sha256=<HMAC-SHA256 of the raw body>." },
    on: { kind: strings, doc: "The results that are sent: good, bad, cancelled, lost. Default: all four." },
    format: { kind: { t: "enum", values: NOTIFY_FORMATS }, doc: "json (floe's run summary, the default) or slack (a Slack incoming-webhook message)." },
  },
  notifySettings: {
    "retry-for": { kind: duration, doc: "Give a delivery up when it has not succeeded this long after the run ended. Default 24h." },
    backoff: { kind: duration, doc: "Delay before the first retry, doubling each time. Default 2s." },
    "max-backoff": { kind: duration, doc: "The longest delay between two tries. Default 10m." },
    "page-url": { kind: str, doc: "The dashboard's address as people reach it (e.g. https://floe.example.com), for the run page's link. Default: the host's own address." },
  },
  secret: {
    file: { kind: str, doc: "A file holding the value (a trailing newline is dropped)." },
    env: { kind: str, doc: "An environment variable of the host holding the value." },
  },
  artifacts: {
    "max-size": { kind: str, doc: "Largest artifact, e.g. 500MiB or 2GiB (KiB, MiB, GiB are powers of 1024; KB, MB, GB of 1000). Default 1GiB." },
    "max-run-size": { kind: str, doc: "Largest total of one run's artifacts. Default 4GiB." },
    grace: { kind: duration, doc: "An object no kept run references is removed once it is older than this. Default 1h." },
  },
  retention: {
    runs: { kind: { t: "int", min: 1 }, doc: "Archived runs kept per flow version. Default 200." },
    "max-age": { kind: duration, doc: "Archived runs and workspaces older than this are pruned. Default 30d." },
  },
};
