/**
 * The runs this host knows (pending, active, and the archived ones kept by retention),
 * in memory for fast listing. Files on disk stay the truth; this is rebuilt from them at
 * start.
 */
import type { RunRecord } from "./run-record.js";
import type { RunExecutor } from "./run-executor.js";
import type { RunState, RunSummary } from "./types.js";

export interface RunEntry {
  record: RunRecord;
  state: RunState;
  waiting?: string;
  executor?: RunExecutor;
  /** Fencing token of this host's hold on the run, while active here. */
  token?: number;
  /** Taken over by another host after this host's lease lapsed. */
  fenced?: boolean;
}

export interface RunQuery {
  readonly flow?: string;
  readonly state?: RunState;
  readonly limit?: number;
  /** Only runs whose id sorts before this one (paging, newest first). */
  readonly before?: string;
}

export interface RunTally {
  readonly pending: number;
  readonly active: number;
  readonly archived: number;
  /** adoptedAt of the oldest pending run, if any. */
  readonly oldestPendingAt: number | undefined;
}

export function summarize(e: RunEntry): RunSummary {
  const r = e.record;
  return {
    ref: r.ref,
    state: e.state,
    attempt: r.attempt,
    trigger: r.trigger,
    adoptedAt: r.adoptedAt,
    ...(r.result !== undefined ? { result: r.result } : {}),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    ...(e.waiting !== undefined && e.state === "pending" ? { waiting: e.waiting } : {}),
    ...(r.startedAt !== undefined ? { startedAt: r.startedAt } : {}),
    ...(r.endedAt !== undefined ? { endedAt: r.endedAt } : {}),
  };
}

export class RunIndex {
  private readonly runs = new Map<string, RunEntry>();

  get(run: string): RunEntry | undefined {
    return this.runs.get(run);
  }

  set(e: RunEntry): void {
    this.runs.set(e.record.ref.run, e);
  }

  delete(run: string): void {
    this.runs.delete(run);
  }

  all(): IterableIterator<RunEntry> {
    return this.runs.values();
  }

  count(pred: (e: RunEntry) => boolean): number {
    let n = 0;
    for (const e of this.runs.values()) if (pred(e)) n++;
    return n;
  }

  /** How many runs are in each state, and when the oldest pend was adopted: one pass, no list. */
  tally(): RunTally {
    const t = { pending: 0, active: 0, archived: 0, oldestPendingAt: undefined as number | undefined };
    for (const e of this.runs.values()) {
      t[e.state]++;
      if (e.state === "pending" && (t.oldestPendingAt === undefined || e.record.adoptedAt < t.oldestPendingAt)) t.oldestPendingAt = e.record.adoptedAt;
    }
    return t;
  }

  /** Newest first (run ids are ULIDs, so they sort by adoption time). */
  query(q: RunQuery): RunSummary[] {
    const out: RunEntry[] = [];
    for (const e of this.runs.values()) {
      if (q.flow !== undefined && e.record.ref.flow !== q.flow) continue;
      if (q.state !== undefined && e.state !== q.state) continue;
      if (q.before !== undefined && e.record.ref.run >= q.before) continue;
      out.push(e);
    }
    out.sort((a, b) => (a.record.ref.run < b.record.ref.run ? 1 : -1));
    return out.slice(0, q.limit ?? 50).map(summarize);
  }
}
