#!/usr/bin/env node
/** The `floe` command: parses the subcommand and hands over. Only cmd/ touches process.exit. */
import { main } from "./main.js";
import { errorMessage } from "../flows/errors.js";

// `floe validate … | head` closes our stdout early: that is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const interrupt = new AbortController();
let signals = 0;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`floe: second ${sig}, exiting now\n`);
      process.exit(130);
    }
    process.stderr.write(`floe: ${sig}, stopping (again to force)\n`);
    interrupt.abort(new Error(sig));
  });
}

const reloaders: (() => void)[] = [];
process.on("SIGHUP", () => {
  for (const fn of reloaders) fn();
});

main(process.argv.slice(2), undefined, { interrupt: interrupt.signal, onReload: (fn) => reloaders.push(fn) }).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`floe: ${errorMessage(e)}\n`);
    process.exitCode = 1;
  },
);
