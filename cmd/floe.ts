#!/usr/bin/env node
/** The `floe` command: parses the subcommand and hands over. Only cmd/ touches process.exit. */
import { main } from "./main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`floe: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
