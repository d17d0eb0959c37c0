/** Reading back what a run's nodes recorded (their status lines), checked line by line. */
import type { RunDirState, RunFiles } from "../store/run-files.js";
import { parseStatusLine, type RunRecord, type StatusLine } from "./run-record.js";

export async function readStatus(files: RunFiles, state: RunDirState, r: RunRecord, node: string): Promise<StatusLine[]> {
  const lines = await files.readLines(files.nodeStatusPath(state, r.ref, node));
  return lines.map(parseStatusLine).filter((l): l is StatusLine => l !== undefined);
}

/** Every node's status lines, by node id. */
export async function readStatuses(files: RunFiles, state: RunDirState, r: RunRecord): Promise<Map<string, StatusLine[]>> {
  const out = new Map<string, StatusLine[]>();
  for (const n of [...r.flow.triggers, ...r.flow.tasks]) out.set(n.id, await readStatus(files, state, r, n.id));
  return out;
}
