import { parseArgs } from "node:util";
import type { Signals } from "./serve.js";
import { validateCommand, type Out } from "./validate.js";
import { errorMessage } from "../flows/errors.js";

const USAGE = `usage:
  floe [serve] --conf=FILE [--root=DIR] [--host=NAME] [--tags=a,b] [--bind=HOST:PORT]
               [--admin=TOKEN] [--slots=N] [--nats=URL] [--redis=URL] [--log-level=LEVEL]
  floe validate [--strict] FILE...
  floe run FILE [--flow=ID] [--set key=value]...
  floe hash-password`;

const stdio: Out = {
  out: (l) => process.stdout.write(l + "\n"),
  err: (l) => process.stderr.write(l + "\n"),
};

const noSignals: Signals = { interrupt: new AbortController().signal, onReload: () => undefined };

export async function main(argv: readonly string[], io: Out = stdio, signals: Signals = noSignals): Promise<number> {
  const [first, ...others] = argv;
  // `floe --conf=x` means `floe serve --conf=x`.
  const sub = first === undefined || first.startsWith("-") ? "serve" : first;
  const rest = first === undefined || first.startsWith("-") ? [...argv] : others;
  switch (sub) {
    case "serve":
      // Loaded on demand: `floe validate` should not pay for fastify and the hub.
      return (await import("./serve.js")).serveCommand(rest, io, signals);
    case "hash-password":
      return (await import("./hash-password.js")).hashPasswordCommand(io);
    case "validate": {
      let parsed;
      try {
        parsed = parseArgs({ args: [...rest], options: { strict: { type: "boolean", default: false } }, allowPositionals: true, strict: true });
      } catch (e) {
        io.err(`floe validate: ${errorMessage(e)}`);
        io.err(USAGE);
        return 2;
      }
      return validateCommand(parsed.positionals, parsed.values.strict === true, io);
    }
    case "run":
      return (await import("./run.js")).runCommand(rest, io, signals.interrupt);
    case "help":
    case "--help":
    case "-h":
      io.out(USAGE);
      return 0;
    default:
      io.err(`floe: unknown command ${sub ?? "(none)"}`);
      io.err(USAGE);
      return 2;
  }
}
