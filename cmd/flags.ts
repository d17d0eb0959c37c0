/**
 * One table of flags per subcommand: it drives both parsing (node:util parseArgs) and the
 * `--help` text, so the two cannot disagree. Every subcommand takes `--help`/`-h`.
 */
import { errorMessage } from "../flows/errors.js";
import { parseArgs } from "node:util";

export interface Flag {
  /** The long name, without the dashes. */
  readonly name: string;
  readonly type: "string" | "boolean";
  /** May be given more than once (`--set a=1 --set b=2`). */
  readonly multiple?: boolean;
  /** The value's placeholder in help, e.g. FILE. */
  readonly arg?: string;
  /** The default as shown in help (the code that applies it says what it means). */
  readonly default?: string;
  /** Also read from FLOE_<NAME> (a flag wins over the variable). */
  readonly env?: boolean;
  readonly help: string;
}

export interface Command {
  readonly name: string;
  /** The line after `floe NAME`, e.g. "[--strict] FILE...". */
  readonly synopsis: string;
  readonly summary: string;
  readonly flags: readonly Flag[];
  /** Whether the command takes positional arguments. */
  readonly positionals: boolean;
  /** Lines shown after the flags. */
  readonly notes?: readonly string[];
}

/** A mistake in how the command was called: exit 2 with the message and a pointer to --help. */
export class UsageError extends Error {}

export interface Parsed {
  /** Flag values: the flag, else FLOE_<NAME> for flags that read one. Absent when neither. */
  readonly values: Readonly<Record<string, string | boolean | readonly string[] | undefined>>;
  readonly positionals: readonly string[];
  readonly help: boolean;
}

const HELP: Flag = { name: "help", type: "boolean", help: "print this help and exit" };

export function envName(flag: string): string {
  return `FLOE_${flag.toUpperCase().replaceAll("-", "_")}`;
}

export function parseCommand(cmd: Command, args: readonly string[], env: NodeJS.ProcessEnv): Parsed {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const f of cmd.flags) options[f.name] = { type: f.type, ...(f.multiple === true ? { multiple: true } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: cmd.positionals, strict: true });
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
  const values: Record<string, string | boolean | readonly string[] | undefined> = {};
  for (const f of cmd.flags) {
    const v = parsed.values[f.name];
    values[f.name] = Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : (v ?? (f.env === true ? env[envName(f.name)] : undefined));
  }
  return { values, positionals: parsed.positionals, help: parsed.values["help"] === true };
}

/** A string flag's value (or its variable's), undefined when neither was given. */
export function stringFlag(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === "string" ? v : undefined;
}

export function listFlag(p: Parsed, name: string): readonly string[] {
  const v = p.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : typeof v === "string" ? [v] : [];
}

export function helpText(cmd: Command): string {
  const rows = [...cmd.flags, HELP].map((f) => {
    const left = `  ${f.name === "help" ? "-h, " : ""}--${f.name}${f.type === "string" ? `=${f.arg ?? "VALUE"}` : ""}`;
    const extras = [f.default !== undefined ? `default: ${f.default}` : undefined, f.env === true ? `env: ${envName(f.name)}` : undefined, f.multiple === true ? "repeatable" : undefined].filter((x) => x !== undefined);
    return { left, right: `${f.help}${extras.length ? ` (${extras.join("; ")})` : ""}` };
  });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  return [
    `usage: floe ${cmd.name} ${cmd.synopsis}`,
    "",
    cmd.summary,
    "",
    "flags:",
    ...rows.map((r) => r.left.padEnd(width) + r.right),
    ...(cmd.notes !== undefined ? ["", ...cmd.notes] : []),
  ].join("\n");
}
