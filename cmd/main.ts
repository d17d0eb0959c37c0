import { parseArgs } from "node:util";
import { validateCommand, type Out } from "./validate.js";

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

export async function main(argv: readonly string[], io: Out = stdio): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "validate": {
      let parsed;
      try {
        parsed = parseArgs({ args: [...rest], options: { strict: { type: "boolean", default: false } }, allowPositionals: true, strict: true });
      } catch (e) {
        io.err(`floe validate: ${e instanceof Error ? e.message : String(e)}`);
        io.err(USAGE);
        return 2;
      }
      return validateCommand(parsed.positionals, parsed.values.strict === true, io);
    }
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
