/**
 * Reading back what a run's nodes recorded: their status records from the run's journal
 * (or the per-node files of the old layout), checked record by record, and their output:
 * floe's own lines about a node (`sys`) are in the journal, what its process printed in
 * `<node>.log`.
 */
import type { RunDirState, RunFiles } from "../store/run-files.js";
import { RUN_KEY } from "../store/run-journal.js";
import { parseStatusLine, type RunRecord, type StatusLine } from "./run-record.js";
import { parseLogLine } from "./wire-checks.js";

/** A run's journal read once: status records and floe's lines, by node. */
export interface RunRecords {
  readonly statuses: Map<string, StatusLine[]>;
  /** Output lines kept in the journal (not yet checked), by node, oldest first. */
  readonly sysLines: Map<string, unknown[]>;
  /** Records about the run itself (its activation: run-record.ts withActivation). */
  readonly run: readonly unknown[];
}

export async function readRecords(files: RunFiles, state: RunDirState, r: RunRecord): Promise<RunRecords> {
  const { byNode } = await files.readJournal(state, r.ref);
  const statuses = new Map<string, StatusLine[]>();
  const sysLines = new Map<string, unknown[]>();
  for (const n of [...r.flow.triggers, ...r.flow.tasks]) {
    const st: StatusLine[] = [];
    const sys: unknown[] = [];
    for (const rec of byNode.get(n.id) ?? []) {
      if (isLogRecord(rec)) {
        const { t: _t, ...line } = rec;
        sys.push(line);
      } else {
        const l = parseStatusLine(rec);
        if (l !== undefined) st.push(l);
      }
    }
    statuses.set(n.id, st);
    sysLines.set(n.id, sys);
  }
  return { statuses, sysLines, run: byNode.get(RUN_KEY) ?? [] };
}

function isLogRecord(x: unknown): x is { t: "log" } & Record<string, unknown> {
  return typeof x === "object" && x !== null && (x as { t?: unknown }).t === "log";
}

/** A node's output lines in the order they were numbered: the journal's and its log file's. */
export function mergeLines(sys: readonly unknown[], printed: readonly unknown[]): unknown[] {
  if (sys.length === 0) return [...printed];
  const seq = (x: unknown): number => {
    const s = (x as { seq?: unknown } | null)?.seq;
    return typeof s === "number" ? s : Number.POSITIVE_INFINITY;
  };
  // Both are in order already; a stable sort keeps lines of equal numbers as they were.
  return [...sys, ...printed].sort((a, b) => seq(a) - seq(b));
}

/** A node's output lines, unchecked, as numbered. */
export async function readNodeLines(files: RunFiles, state: RunDirState, r: RunRecord, node: string, records?: RunRecords): Promise<unknown[]> {
  const [recs, printed] = await Promise.all([records ?? readRecords(files, state, r), files.readNodeLog(state, r.ref, node)]);
  return mergeLines(recs.sysLines.get(node) ?? [], printed);
}

/**
 * The highest line number each node's output holds (so far in this attempt), so a
 * resumed run numbers its next lines after them instead of from 1 again.
 */
export async function readLogCounts(files: RunFiles, state: RunDirState, r: RunRecord, records?: RunRecords): Promise<Map<string, number>> {
  const recs = records ?? (await readRecords(files, state, r));
  const out = new Map<string, number>();
  for (const n of r.flow.tasks) {
    if (n.class !== "task") continue;
    let max = 0;
    for (const raw of await readNodeLines(files, state, r, n.id, recs)) max = Math.max(max, parseLogLine(raw)?.seq ?? 0);
    if (max > 0) out.set(n.id, max);
  }
  return out;
}

/** Every node's status lines, by node id (an entry for each node of the flow, empty if it never acted). */
export async function readStatuses(files: RunFiles, state: RunDirState, r: RunRecord): Promise<Map<string, StatusLine[]>> {
  return (await readRecords(files, state, r)).statuses;
}
