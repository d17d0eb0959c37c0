/**
 * Reading back what a run's nodes recorded: their status records from the run's journal
 * (or the per-node files of the old layout), checked record by record, and their logs.
 */
import type { RunDirState, RunFiles } from "../store/run-files.js";
import { parseStatusLine, type RunRecord, type StatusLine } from "./run-record.js";
import { parseLogLine } from "./wire-checks.js";

/**
 * The highest line number each node's log holds (its output so far in this attempt), so a
 * resumed run numbers its next lines after them instead of from 1 again.
 */
export async function readLogCounts(files: RunFiles, state: RunDirState, r: RunRecord): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const n of r.flow.tasks) {
    if (n.class !== "task") continue;
    let max = 0;
    for (const raw of await files.readNodeLog(state, r.ref, n.id)) max = Math.max(max, parseLogLine(raw)?.seq ?? 0);
    if (max > 0) out.set(n.id, max);
  }
  return out;
}

/** Every node's status lines, by node id (an entry for each node of the flow, empty if it never acted). */
export async function readStatuses(files: RunFiles, state: RunDirState, r: RunRecord): Promise<Map<string, StatusLine[]>> {
  const { byNode } = await files.readJournal(state, r.ref);
  const out = new Map<string, StatusLine[]>();
  for (const n of [...r.flow.triggers, ...r.flow.tasks]) {
    out.set(n.id, (byNode.get(n.id) ?? []).map(parseStatusLine).filter((l): l is StatusLine => l !== undefined));
  }
  return out;
}
