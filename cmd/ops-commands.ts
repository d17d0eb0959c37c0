/**
 * The operators' commands and their flags (DESIGN §6.1): they drive a running host over its
 * HTTP API. Exit 0 on success, 1 when the thing asked for failed (a run that ends bad, an
 * error from the server, a server that can not be reached), 2 on usage errors.
 */
import type { Command, Flag } from "./flags.js";

const SERVER: Flag = { name: "server", type: "string", arg: "URL", default: "http://127.0.0.1:8080", env: true, help: "the host to talk to (any host of a cluster); a path names the API's base (common.base-url), default /build/api" };
const TOKEN: Flag = { name: "token", type: "string", arg: "TOKEN", default: "<root>/admin-token", env: true, help: "the API token (the host's --admin token, or a user's from POST /login)" };
const ROOT: Flag = { name: "root", type: "string", arg: "DIR", default: "~/.floe", env: true, help: "where to find admin-token when no token is given" };
const JSON_FLAG: Flag = { name: "json", type: "boolean", default: "off", help: "print the server's answer as JSON, for scripts" };
const FOLLOW: Flag = { name: "follow", type: "boolean", default: "off", help: "stream the run's output until it ends; exit 0 if it ends good, 1 otherwise" };
const CONNECTION: readonly Flag[] = [SERVER, TOKEN, ROOT];
const EXITS = "Exit 0 on success, 1 when it failed (a run that ended bad, an error from the server, no server), 2 on usage errors.";

export const TRIGGER: Command = {
  name: "trigger",
  synopsis: "FLOW [--trigger=NAME] [--set key=value]... [--follow] [--json]",
  summary: "Starts a run of FLOW from a data trigger on a running host and prints its id; --follow streams its output (`<time> [flow.node] text`) and waits for its end.",
  positionals: true,
  flags: [
    { name: "trigger", type: "string", arg: "NAME", default: "the flow's data trigger", help: "which data trigger of the flow" },
    { name: "set", type: "string", arg: "KEY=VALUE", multiple: true, help: "a value of the trigger's form" },
    FOLLOW,
    JSON_FLAG,
    ...CONNECTION,
  ],
  notes: [EXITS],
};

export const RUNS: Command = {
  name: "runs",
  synopsis: "[--flow=ID] [--state=S] [--limit=N] [--json]",
  summary: "Lists runs across the cluster, newest first, as a table (tab-separated without a header when stdout is not a terminal).",
  positionals: false,
  flags: [
    { name: "flow", type: "string", arg: "ID", default: "every flow", help: "only runs of this flow" },
    { name: "state", type: "string", arg: "S", default: "any", help: "pending, active or archived" },
    { name: "limit", type: "string", arg: "N", default: "20", help: "at most N runs (1 to 1000)" },
    JSON_FLAG,
    ...CONNECTION,
  ],
  notes: [EXITS],
};

export const LOGS: Command = {
  name: "logs",
  synopsis: "RUN [NODE] [--follow] [--json]",
  summary: "Prints a run's output, of every node or of NODE, as `<time> [flow.node] text` lines in the order they were printed; --follow goes on until the run ends.",
  positionals: true,
  flags: [FOLLOW, { ...JSON_FLAG, help: "one JSON object per line: node, attempt, seq, at, text, stream" }, ...CONNECTION],
  notes: [EXITS],
};

export const CANCEL: Command = {
  name: "cancel",
  synopsis: "RUN [--json]",
  summary: "Cancels a pending or active run: its tasks are killed and it ends cancelled.",
  positionals: true,
  flags: [JSON_FLAG, ...CONNECTION],
  notes: [EXITS],
};

export const PAUSE: Command = {
  name: "pause",
  synopsis: "RUN [--json]",
  summary: "Pauses a run: it starts no new task (running ones finish) and keeps its locks.",
  positionals: true,
  flags: [JSON_FLAG, ...CONNECTION],
  notes: [EXITS],
};

export const RESUME: Command = {
  name: "resume",
  synopsis: "RUN [--json]",
  summary: "Resumes a paused run.",
  positionals: true,
  flags: [JSON_FLAG, ...CONNECTION],
  notes: [EXITS],
};

export const RERUN: Command = {
  name: "rerun",
  synopsis: "RUN [--from=NODE] [--json]",
  summary: "Starts a new run of the same flow snapshot with the same trigger values and prints its id; with --from, the nodes leading to NODE are taken from the old run.",
  positionals: true,
  flags: [{ name: "from", type: "string", arg: "NODE", default: "the start", help: "run again from this node" }, JSON_FLAG, ...CONNECTION],
  notes: [EXITS],
};

export const COMPLETION: Command = {
  name: "completion",
  synopsis: "bash|zsh",
  summary: "Prints a shell completion script: `source <(floe completion bash)`, or for zsh `floe completion zsh > \"${fpath[1]}/_floe\"`.",
  positionals: true,
  flags: [],
};

export const OPS_COMMANDS: readonly Command[] = [TRIGGER, RUNS, LOGS, CANCEL, PAUSE, RESUME, RERUN, COMPLETION];
