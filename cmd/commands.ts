/**
 * The subcommands and their flags (DESIGN §6.1): what `floe help` and `floe CMD --help`
 * print, and what each command parses. Kept apart from the commands themselves so that help
 * loads nothing heavy.
 */
import { DEFAULT_CLUSTER } from "../store/cluster-name.js";
import type { Command } from "./flags.js";
import { OPS_COMMANDS } from "./ops-commands.js";

const LOG_LEVELS = "fatal, error, warn, info, debug, trace or silent";
const LOG_FORMAT_HELP = "the own log's form: pretty (a line for people), json (one object a line), or auto: pretty when stderr is a terminal, else json";

export const SERVE: Command = {
  name: "serve",
  synopsis: "[--conf=FILE] [--root=DIR] [--host=NAME] [--tags=a,b] [--bind=HOST:PORT] [flags]",
  summary: "Runs one host: hub, agent, triggers, HTTP API and dashboard, until SIGINT/SIGTERM. `floe --conf=FILE` is short for `floe serve --conf=FILE`.",
  positionals: false,
  flags: [
    { name: "conf", type: "string", arg: "FILE", default: "./config.yml if there is one", env: true, help: "the host config: common and flows; without one the host has no flows of its own" },
    { name: "root", type: "string", arg: "DIR", default: "~/.floe", env: true, help: "run files, workspaces, download cache, sessions" },
    { name: "host", type: "string", arg: "NAME", default: "the short hostname", env: true, help: "this host's name, in run refs and the cluster" },
    { name: "tags", type: "string", arg: "a,b", default: "none", env: true, help: "this host's tags; a flow runs only where its host-tags are among them" },
    { name: "bind", type: "string", arg: "HOST:PORT", default: "127.0.0.1:8080", env: true, help: "the HTTP address" },
    { name: "admin", type: "string", arg: "TOKEN", default: "generated, kept in <root>/admin-token", env: true, help: "a token that is always an admin" },
    { name: "slots", type: "string", arg: "N", default: "the number of CPUs", env: true, help: "how many runs this host executes at once" },
    { name: "nats", type: "string", arg: "URL", default: "none", env: true, help: "cluster mode (with --redis): NATS servers, comma-separated" },
    { name: "redis", type: "string", arg: "URL", default: "none", env: true, help: "cluster mode (with --nats): redis://, rediss://, redis+sentinel:// or redis+cluster://" },
    { name: "cluster", type: "string", arg: "NAME", default: DEFAULT_CLUSTER, env: true, help: "hosts on the same brokers with the same name form one cluster" },
    { name: "stream-max-bytes", type: "string", arg: "SIZE", default: "1GiB", env: true, help: "cluster mode: the size of the JetStream stream of run events and log lines; the oldest go first (KiB, MiB, GiB; KB, MB, GB)" },
    { name: "stream-max-age", type: "string", arg: "DURATION", default: "7d", env: true, help: "cluster mode: how long run events and log lines are kept in the stream (e.g. 36h, 7d)" },
    { name: "stream-replicas", type: "string", arg: "N", default: "1", env: true, help: "cluster mode: copies of the stream kept by a NATS cluster (1 to 5; 3 survives the loss of one server)" },
    { name: "lease", type: "string", arg: "SECONDS", default: "2", env: true, help: "how long a host's lease lasts without a heartbeat (0.3 to 600)" },
    { name: "log-level", type: "string", arg: "LEVEL", default: "info", env: true, help: `the host's own log on stderr: ${LOG_LEVELS}` },
    { name: "log-format", type: "string", arg: "FORMAT", default: "auto", env: true, help: LOG_FORMAT_HELP },
    { name: "tls-cert", type: "string", arg: "FILE", default: "none", env: true, help: "serve HTTPS with this certificate (with --tls-key)" },
    { name: "tls-key", type: "string", arg: "FILE", default: "none", env: true, help: "the certificate's private key (with --tls-cert)" },
    { name: "stop-grace", type: "string", arg: "SECONDS", default: "30", env: true, help: "on SIGTERM, how long active runs may finish before their tasks are killed" },
  ],
  notes: ["Signals: SIGINT/SIGTERM stop gracefully (a second one forces), SIGHUP reloads the config."],
};

export const VALIDATE: Command = {
  name: "validate",
  synopsis: "[--strict] FILE...",
  summary: "Checks flow files: every problem as FILE:LINE:COL: error|warning: message. Exit 0 when valid, 1 when not, 2 on usage errors.",
  positionals: true,
  flags: [{ name: "strict", type: "boolean", default: "off", help: "count warnings as errors" }],
};

export const RUN: Command = {
  name: "run",
  synopsis: "FILE [--flow=ID] [--set key=value]... [--root=DIR]",
  summary: "Runs one flow once in the foreground, printing its output; exit 0 when the run ends good, 1 otherwise, 130 on Ctrl-C.",
  notes: [
    "A data node the run reaches takes its fields from --set NODE.FIELD=VALUE; on a terminal, the fields not given are asked for.",
    "Without a terminal, a node still missing required fields cancels the run: exit 1, saying which --set to add.",
  ],
  positionals: true,
  flags: [
    { name: "flow", type: "string", arg: "ID", default: "the file's only flow", help: "which flow of FILE to run" },
    { name: "set", type: "string", arg: "KEY=VALUE", multiple: true, help: "a value of the trigger's form; NODE.FIELD=VALUE: input for the data node NODE" },
    { name: "root", type: "string", arg: "DIR", default: "a new temporary directory, removed when the run ends", help: "where the run's files and workspace go" },
    { name: "keep", type: "boolean", default: "off", help: "keep the temporary root (its path is printed at the end)" },
    { name: "log-level", type: "string", arg: "LEVEL", default: "warn", env: true, help: `floe's own log on stderr: ${LOG_LEVELS}` },
    { name: "log-format", type: "string", arg: "FORMAT", default: "auto", env: true, help: LOG_FORMAT_HELP },
  ],
};

export const HASH_PASSWORD: Command = {
  name: "hash-password",
  synopsis: "",
  summary: "Reads a password (from a terminal, or one line of stdin) and prints its scrypt hash for common.users.",
  positionals: false,
  flags: [],
};

export const COMMANDS: readonly Command[] = [SERVE, VALIDATE, RUN, HASH_PASSWORD, ...OPS_COMMANDS];
