/**
 * What the cluster's pending list holds for a run (a PendRecord) and how a run record comes
 * back from the shared state: used by adoption, dispatch, reaping and recovery alike.
 */
import type { PendRecord } from "./cluster-state.js";
import { parseRunRecord, type RunRecord } from "./run-record.js";

const REUSE_SPACE = "reuse-space:";

/** The resource that serialises the runs of a `reuse-space` flow: they share one workspace. */
export function reuseSpaceResource(flow: string): string {
  return `${REUSE_SPACE}${flow}`;
}

/** The flow whose shared workspace `resource` is, if it is one. */
export function reuseSpaceFlow(resource: string): string | undefined {
  return resource.startsWith(REUSE_SPACE) ? resource.slice(REUSE_SPACE.length) : undefined;
}

/** Every resource a run must hold: its flow's resource tags, and its shared workspace. */
export function resourcesOf(r: RunRecord): string[] {
  return [...r.flow.resourceTags, ...(r.flow.reuseSpace ? [reuseSpaceResource(r.flow.id)] : [])];
}

/**
 * The pend of a run. `withRecord`: another host activating or requeuing it needs the run's
 * record; an embedded host only claims its own pends, whose records it holds, so it keeps
 * no second copy (≈ 2 KB a pend).
 */
export function pendOf(r: RunRecord, withRecord: boolean): PendRecord {
  return {
    run: r.ref.run,
    flowKey: `${r.flow.id}/${r.flow.ver}`,
    hostTags: r.flow.hostTags,
    resources: resourcesOf(r),
    ...(r.flow.concurrency !== undefined ? { concurrency: r.flow.concurrency } : {}),
    adoptedBy: r.ref.adoptedBy,
    adoptedAt: r.adoptedAt,
    record: withRecord ? JSON.stringify(r) : "",
  };
}

/** A run record kept in the shared state (a claim's, a reaped run's), checked; undefined if absent or malformed. */
export function recordFromState(json: string | undefined): RunRecord | undefined {
  if (json === undefined || json === "") return undefined;
  try {
    return parseRunRecord(JSON.parse(json));
  } catch {
    return undefined;
  }
}
