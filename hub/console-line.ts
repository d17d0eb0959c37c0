/**
 * A task's output line on the host's console (DESIGN §6.1):
 * `2026-11-22T11:18:25.364Z [migrate.apply 3F9Q] text` — its time, flow and node, and the
 * run's short id, so that the lines of two runs of one flow can be told apart. A for-each
 * instance's line names its instance: `[matrix.build#2 3F9Q]`.
 */
import type { LogLine, RunRef } from "./types.js";

/**
 * The last 4 characters of a run's ULID: the end of its random part, so that runs adopted
 * in the same millisecond differ too (a monotonic ULID counts up there). Two runs share one
 * by chance once in 32⁴, about a million: enough to tell apart the runs on one console.
 */
export function shortRunId(run: string): string {
  return run.slice(-4);
}

export function consoleLine(ref: RunRef, node: string, line: LogLine): string {
  const instance = line.instance !== undefined ? `#${line.instance}` : "";
  return `${new Date(line.at).toISOString()} [${ref.flow}.${node}${instance} ${shortRunId(ref.run)}] ${line.text}`;
}
