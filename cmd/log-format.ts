/**
 * The host's own log (pino) as people read it on a terminal, one line per entry:
 *
 *     2026-11-22T11:18:25.364Z INFO  config reloaded flows=3
 *     2026-11-22T11:18:26.001Z ERROR reload failed; keeping the old config conf=/etc/floe.yml
 *         Error: boom
 *             at …
 *
 * and JSON, one object a line, for machines (stderr not a terminal, or `--log-format=json`).
 * A formatter of pino's lines rather than pino-pretty: that brings 13 packages (a CLI, a
 * config-file loader, a date library…) for this one function.
 */
import { isatty } from "node:tty";
import type { DestinationStream } from "pino";

export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The flag's value as a format; undefined when it names none. */
export function logFormatOf(text: string): LogFormat | undefined {
  return LOG_FORMATS.find((f) => f === text);
}

/** `auto`: pretty when `fd` is a terminal, else JSON. */
export function chooseFormat(format: LogFormat, fd: number): "json" | "pretty" {
  if (format !== "auto") return format;
  return isatty(fd) ? "pretty" : "json";
}

const LEVELS: Readonly<Record<number, { name: string; color: string }>> = {
  10: { name: "TRACE", color: "\x1b[90m" },
  20: { name: "DEBUG", color: "\x1b[36m" },
  30: { name: "INFO ", color: "\x1b[32m" },
  40: { name: "WARN ", color: "\x1b[33m" },
  50: { name: "ERROR", color: "\x1b[31m" },
  60: { name: "FATAL", color: "\x1b[35m" },
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";

/** Wraps `out`: each JSON line pino writes is written as a pretty one. */
export function prettyDestination(out: DestinationStream, color: boolean): DestinationStream {
  return { write: (line: string) => out.write(prettyLine(line, color)) };
}

/**
 * One JSON line of pino as a line for people: time, level, message, then the entry's other
 * fields as `key=value` (quoted when they hold spaces or quotes), then an error's stack
 * indented under it. A line that is not a JSON object is passed on as it is.
 */
export function prettyLine(json: string, color = false): string {
  let x: unknown;
  try {
    x = JSON.parse(json);
  } catch {
    return json.endsWith("\n") ? json : `${json}\n`;
  }
  if (!isRecord(x)) return json.endsWith("\n") ? json : `${json}\n`;
  const { time, level, msg, err, ...rest } = x;
  const lv = typeof level === "number" ? LEVELS[level] : undefined;
  const levelText = lv === undefined ? String(level ?? "").padEnd(5) : color ? `${lv.color}${lv.name}${RESET}` : lv.name;
  const parts = [typeof time === "string" ? time : typeof time === "number" ? new Date(time).toISOString() : "", levelText];
  if (typeof msg === "string" && msg !== "") parts.push(msg);
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${fieldText(v)}`);
  const stack = errorStack(err);
  if (err !== undefined && stack === undefined) fields.push(`err=${fieldText(err)}`);
  if (fields.length > 0) parts.push(color ? `${DIM}${fields.join(" ")}${RESET}` : fields.join(" "));
  const head = parts.filter((p) => p !== "").join(" ");
  return stack === undefined ? `${head}\n` : `${head}\n${stack.replace(/^/gm, "    ")}\n`;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

function fieldText(v: unknown): string {
  if (typeof v === "string") return /^[^\s"'=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** pino's err serializer gives `{type, message, stack}`: the stack says both. */
function errorStack(err: unknown): string | undefined {
  if (err === null || typeof err !== "object" || !("stack" in err)) return undefined;
  return typeof err.stack === "string" ? err.stack : undefined;
}
