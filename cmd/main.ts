/** Picks the subcommand, parses its flags from its table (cmd/commands.ts), answers --help and --version, and hands over. */
import { COMMANDS, HASH_PASSWORD, RUN, SERVE, VALIDATE } from "./commands.js";
import { CANCEL, COMPLETION, LOGS, PAUSE, RERUN, RESUME, RUNS, TRIGGER } from "./ops-commands.js";
import { helpText, parseCommand, UsageError, type Command, type Parsed } from "./flags.js";
import type { Signals } from "./serve.js";
import { validateCommand, type Out } from "./validate.js";
import { floeVersion } from "./version.js";

const stdio: Out = {
  out: (l) => process.stdout.write(l + "\n"),
  err: (l) => process.stderr.write(l + "\n"),
};

const noSignals: Signals = { interrupt: new AbortController().signal, onReload: () => undefined };

function overview(): string {
  return [
    "usage: floe [serve] [flags]      run a host (the default command)",
    "       floe validate [--strict] FILE...",
    "       floe run FILE [--flow=ID] [--set key=value]...",
    "       floe hash-password",
    "       floe trigger FLOW [--set key=value]... [--follow]   (a running host: --server, --token)",
    "       floe runs [--flow=ID] [--state=S] [--limit=N] [--json]",
    "       floe logs RUN [NODE] [--follow] | floe cancel|pause|resume RUN | floe rerun RUN [--from=NODE]",
    "       floe completion bash|zsh",
    "       floe help [COMMAND] | floe COMMAND --help | floe --version",
    "",
    ...COMMANDS.flatMap((c) => [helpText(c), ""]),
  ].join("\n");
}

async function dispatch(cmd: Command, p: Parsed, io: Out, signals: Signals): Promise<number> {
  switch (cmd) {
    case SERVE:
      // Loaded on demand: `floe validate` should not pay for fastify and the hub.
      return (await import("./serve.js")).serveCommand(p, io, signals);
    case VALIDATE:
      return validateCommand(p.positionals, p.values["strict"] === true, io);
    case RUN:
      return (await import("./run.js")).runCommand(p, io, signals.interrupt);
    case HASH_PASSWORD:
      return (await import("./hash-password.js")).hashPasswordCommand(io);
    case COMPLETION:
      return (await import("./completion.js")).completionCommand(p.positionals, COMMANDS, io);
    case TRIGGER:
    case RUNS:
    case LOGS:
    case CANCEL:
    case PAUSE:
    case RESUME:
    case RERUN:
      return (await import("./ops.js")).opsCommand(cmd, p, io, signals.interrupt);
    default:
      throw new Error(`floe: command ${cmd.name} has no handler`);
  }
}

export async function main(argv: readonly string[], io: Out = stdio, signals: Signals = noSignals, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [first, ...others] = argv;
  if (first === "--version" || first === "-V" || first === "version") {
    io.out(floeVersion());
    return 0;
  }
  if (first === "help" || ((first === "--help" || first === "-h") && others.length === 0)) {
    const topic = first === "help" ? others[0] : undefined;
    const cmd = COMMANDS.find((c) => c.name === topic);
    if (topic !== undefined && cmd === undefined) {
      io.err(`floe help: unknown command ${topic} (commands: ${COMMANDS.map((c) => c.name).join(", ")})`);
      return 2;
    }
    io.out(cmd !== undefined ? helpText(cmd) : overview());
    return 0;
  }
  // `floe --conf=x` (or no arguments) means `floe serve …`.
  const implicit = first === undefined || first.startsWith("-");
  const cmd = implicit ? SERVE : COMMANDS.find((c) => c.name === first);
  if (cmd === undefined) {
    io.err(`floe: unknown command ${first ?? ""}; see floe --help`);
    return 2;
  }
  let parsed: Parsed;
  try {
    parsed = parseCommand(cmd, implicit ? argv : others, env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`floe ${cmd.name}: ${e.message}`);
    io.err(`usage: floe ${cmd.name} ${cmd.synopsis} (see floe ${cmd.name} --help)`);
    return 2;
  }
  if (parsed.help) {
    io.out(helpText(cmd));
    return 0;
  }
  try {
    return await dispatch(cmd, parsed, io, signals);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`floe ${cmd.name}: ${e.message}`);
    io.err(`usage: floe ${cmd.name} ${cmd.synopsis} (see floe ${cmd.name} --help)`);
    return 2;
  }
}
