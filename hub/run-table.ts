/**
 * The runs this host knows, and the one writer of their entries. An entry is immutable;
 * it changes only by a named transition of this table, which checks that the run is in a
 * state the transition starts from and throws otherwise (a bug, never a user's error):
 *
 *   adopt ─→ pending ─→ hold ─→ suspended ⇄ active ─→ archive ─→ archived ─→ forget
 *              └──────────────────────── archive ─────────┘
 *
 * `suspended` is a run this host holds in the cluster (its fencing token) with no executor
 * running it now: being activated or recovered, stood down while the lease does not vouch
 * for it, or left by a stop for the next start. To the world it is active. Files on disk
 * stay the truth; the table is rebuilt from them at start. Replacing an entry gives it a new
 * identity, so code that awaited something can check it still has the entry it looked at.
 */
import { ArchivedIndex } from "./archived-index.js";
import type { RunExecutor } from "./run-executor.js";
import type { RunRecord } from "./run-record.js";
import type { RunState, RunSummary } from "./types.js";

export type SuspendReason = "activating" | "recovering" | "stood down" | "stopping";

export interface PendingRun {
  readonly state: "pending";
  readonly record: RunRecord;
  /** Why it waits, as the dispatcher last saw it. */
  readonly waiting?: string;
}

export interface ActiveRun {
  readonly state: "active";
  readonly record: RunRecord;
  /** Fencing token of this host's hold on the run. */
  readonly token: number;
  readonly executor: RunExecutor;
}

export interface SuspendedRun {
  readonly state: "suspended";
  readonly record: RunRecord;
  readonly token: number;
  readonly why: SuspendReason;
}

export interface ArchivedRun {
  readonly state: "archived";
  readonly record: RunRecord;
}

export type RunEntry = PendingRun | ActiveRun | SuspendedRun | ArchivedRun;

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

/** The state the world sees: a suspended run is active in the cluster. */
export function publicState(e: RunEntry): RunState {
  return e.state === "suspended" ? "active" : e.state;
}

export function summarize(e: RunEntry): RunSummary {
  const r = e.record;
  return {
    ref: r.ref,
    state: publicState(e),
    attempt: r.attempt,
    trigger: r.trigger,
    adoptedAt: r.adoptedAt,
    ...(r.result !== undefined ? { result: r.result } : {}),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    ...(e.state === "pending" && e.waiting !== undefined ? { waiting: e.waiting } : {}),
    ...(r.startedAt !== undefined ? { startedAt: r.startedAt } : {}),
    ...(r.endedAt !== undefined ? { endedAt: r.endedAt } : {}),
    ...(r.def !== undefined ? { def: r.def } : {}),
    // An ended run is no longer paused, whatever its record said when it ended.
    ...(r.paused !== undefined && e.state !== "archived" ? { paused: true, pausedBy: r.paused.by, pausedAt: r.paused.at } : {}),
    ...(r.rerunOf !== undefined ? { rerunOf: r.rerunOf } : {}),
    ...(r.reruns !== undefined && r.reruns.length > 0 ? { reruns: r.reruns } : {}),
    ...(r.parent !== undefined ? { parent: { run: r.parent.run, node: r.parent.node, ...(r.parent.instance !== undefined ? { instance: r.parent.instance } : {}) } } : {}),
    ...(r.outputs !== undefined ? { outputs: r.outputs } : {}),
    ...(r.artifacts !== undefined ? { artifacts: r.artifacts } : {}),
  };
}

export class IllegalTransition extends Error {
  constructor(run: string, transition: string, from: RunEntry["state"] | "unknown") {
    super(`run ${run}: ${transition} is not allowed from ${from}`);
    this.name = "IllegalTransition";
  }
}

export class RunTable {
  private readonly runs = new Map<string, RunEntry>();
  private readonly archived = new ArchivedIndex();

  get(run: string): RunEntry | undefined {
    return this.runs.get(run);
  }

  all(): IterableIterator<RunEntry> {
    return this.runs.values();
  }

  count(pred: (e: RunEntry) => boolean): number {
    let n = 0;
    for (const e of this.runs.values()) if (pred(e)) n++;
    return n;
  }

  // --- transitions ---------------------------------------------------------------------

  /** A new pend: adopted here, found on disk at start, or claimed from another host. */
  adopt(record: RunRecord): PendingRun {
    this.expect(record.ref.run, "adopt", [undefined]);
    return this.put({ state: "pending", record });
  }

  /** Why a pend waits (the dispatcher's latest answer). */
  wait(run: string, why: string): PendingRun {
    const e = this.expect(run, "wait", ["pending"]);
    return this.put({ ...e, state: "pending", waiting: why });
  }

  /** The cluster gave this host the run (a claim, or a hold after a restart) under `token`. */
  hold(record: RunRecord, token: number, why: "activating" | "recovering"): SuspendedRun {
    this.expect(record.ref.run, "hold", [undefined, "pending"]);
    return this.put({ state: "suspended", record, token, why });
  }

  /** An executor runs it here now. */
  run(run: string, executor: RunExecutor): ActiveRun {
    const e = this.expect(run, "run", ["suspended"]);
    return this.put({ state: "active", record: e.record, token: e.token, executor });
  }

  /** Its executor stopped without ending it (stand-down, stop): it waits here. */
  suspend(run: string, why: "stood down" | "stopping"): SuspendedRun {
    const e = this.expect(run, "suspend", ["active"]);
    return this.put({ state: "suspended", record: e.record, token: e.token, why });
  }

  /**
   * The run's record changed without a change of state (paused, resumed, a re-run made of
   * it): the entry keeps everything else, its executor included.
   */
  revise(run: string, record: RunRecord): RunEntry {
    const e = this.expect(run, "revise", ["pending", "active", "suspended", "archived"]);
    return this.put({ ...e, record });
  }

  /** It ended: `record` carries its result. */
  archive(record: RunRecord): ArchivedRun {
    this.expect(record.ref.run, "archive", ["pending", "active", "suspended"]);
    return this.put({ state: "archived", record });
  }

  /** An archived run found on disk at start. */
  restore(record: RunRecord): ArchivedRun {
    this.expect(record.ref.run, "restore", [undefined]);
    return this.put({ state: "archived", record });
  }

  /** Gone from this host: pruned, taken over, or moved on elsewhere. */
  forget(run: string): void {
    const e = this.runs.get(run);
    if (e?.state === "archived") this.archived.remove(e.record.ref.flow, e.record.ref.ver, run);
    this.runs.delete(run);
  }

  // --- reading -------------------------------------------------------------------------

  /** How many runs are in each state, and when the oldest pend was adopted: one pass, no list. */
  tally(): RunTally {
    const t = { pending: 0, active: 0, archived: 0, oldestPendingAt: undefined as number | undefined };
    for (const e of this.runs.values()) {
      t[publicState(e)]++;
      if (e.state === "pending" && (t.oldestPendingAt === undefined || e.record.adoptedAt < t.oldestPendingAt)) t.oldestPendingAt = e.record.adoptedAt;
    }
    return t;
  }

  /** Newest first (run ids are ULIDs, so they sort by adoption time). */
  query(q: RunQuery): RunSummary[] {
    const out: RunEntry[] = [];
    for (const e of this.runs.values()) {
      if (q.flow !== undefined && e.record.ref.flow !== q.flow) continue;
      if (q.state !== undefined && publicState(e) !== q.state) continue;
      if (q.before !== undefined && e.record.ref.run >= q.before) continue;
      out.push(e);
    }
    out.sort((a, b) => (a.record.ref.run < b.record.ref.run ? 1 : -1));
    return out.slice(0, q.limit ?? 50).map(summarize);
  }

  /** Runs of one flow version in one state, oldest first. */
  ofVersion<S extends RunEntry["state"]>(flow: string, ver: number, state: S): Extract<RunEntry, { state: S }>[] {
    const out: Extract<RunEntry, { state: S }>[] = [];
    if (state === "archived") {
      for (const run of this.archived.runs(flow, ver)) {
        const e = this.runs.get(run);
        if (e?.state === state) out.push(e as Extract<RunEntry, { state: S }>);
      }
      return out;
    }
    for (const e of this.runs.values()) {
      if (e.state === state && e.record.ref.flow === flow && e.record.ref.ver === ver) out.push(e as Extract<RunEntry, { state: S }>);
    }
    return out.sort((a, b) => (a.record.ref.run < b.record.ref.run ? -1 : 1));
  }

  private put<E extends RunEntry>(e: E): E {
    const { flow, ver, run } = e.record.ref;
    if (e.state === "archived" && this.runs.get(run)?.state !== "archived") this.archived.add(flow, ver, run);
    this.runs.set(run, e);
    return e;
  }

  private expect<S extends RunEntry["state"]>(run: string, transition: string, from: readonly (S | undefined)[]): Extract<RunEntry, { state: S }> {
    const e = this.runs.get(run);
    if (!from.includes(e?.state as S | undefined)) throw new IllegalTransition(run, transition, e?.state ?? "unknown");
    return e as Extract<RunEntry, { state: S }>;
  }
}
