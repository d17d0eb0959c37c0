/**
 * Pause and resume (DESIGN §6.3). A paused run starts no new task: its running tasks finish
 * and their events are recorded and routed, but the tasks those events would start wait
 * until it is resumed. It keeps its slot and its resource locks, and its timeout keeps
 * counting. The mark is written to the run's run.json (a restart of its host finds it there)
 * and, in a cluster, to the shared state (a requeue after the loss of its host carries it to
 * the new attempt: cluster-sync reads it back with pausedInCluster). A request for a run
 * executed by another host is sent to that host over the cluster link.
 */
import type { RunFiles } from "../store/run-files.js";
import type { ClusterLink } from "./cluster-link.js";
import type { ClusterState } from "./cluster-state.js";
import { FloeError } from "./errors.js";
import type { Publisher } from "./publisher.js";
import type { Queries } from "./queries.js";
import type { PauseMark, RunRecord } from "./run-record.js";
import { summarize, type RunTable } from "./run-table.js";
import type { RunSummary } from "./types.js";
import { checked, isObj, summaryProblem } from "./wire-checks.js";
import { now as clockNow } from "../store/clock.js";

export interface PauseRequest {
  readonly run: string;
  readonly by: string;
  readonly pause: boolean;
}

/** A pause or resume request from another host, checked. */
export function parsePauseRequest(x: unknown): PauseRequest {
  if (!isObj(x) || typeof x["run"] !== "string" || typeof x["by"] !== "string" || typeof x["pause"] !== "boolean") throw new FloeError("E_BAD_REQUEST", "a pause request needs run and by (strings) and pause (a boolean)");
  return { run: x["run"], by: x["by"], pause: x["pause"] };
}

/** The shared-state key of a run's pause mark (an empty value: not paused). */
function pauseKey(run: string): string {
  return `paused-${run}`;
}

/** A run's pause mark as the cluster has it: for the new attempt of a requeued run. */
export async function pausedInCluster(state: ClusterState, run: string): Promise<PauseMark | undefined> {
  const v = await state.getValue(pauseKey(run));
  if (v === undefined || v === "") return undefined;
  try {
    const x: unknown = JSON.parse(v);
    return isObj(x) && typeof x["by"] === "string" && typeof x["at"] === "number" ? { by: x["by"], at: x["at"] } : undefined;
  } catch {
    return undefined;
  }
}

export interface PausesDeps {
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly state: ClusterState;
  readonly queries: Queries;
  readonly publisher: Publisher;
  readonly clustered: boolean;
  readonly link?: ClusterLink;
}

export class Pauses {
  constructor(private readonly d: PausesDeps) {}

  /** Pauses (`pause`) or resumes a run on any host of the cluster. */
  async set(run: string, by: string, pause: boolean): Promise<RunSummary> {
    const { table, queries, link } = this.d;
    const here = table.get(run);
    if (here?.state !== "active" && here?.state !== "suspended" && link !== undefined) {
      const host = await queries.remoteHost(run);
      if (host !== undefined) return checked<RunSummary>(await link.ask(host, "pause", { run, by, pause }), summaryProblem, `host ${host}'s answer`);
      if (here === undefined) {
        const sum = await queries.indexedSummary(run);
        if (sum === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
        throw notActive(run, sum.state);
      }
    }
    return this.setHere(run, by, pause);
  }

  /** Pauses or resumes a run this host holds. */
  async setHere(run: string, by: string, pause: boolean): Promise<RunSummary> {
    const { table, files, state } = this.d;
    const e = this.d.queries.entry(run);
    if (e.state === "pending" || e.state === "archived") throw notActive(run, e.state);
    // Its run.json is being written by its activation or recovery: a pause now could be lost.
    if (e.state === "suspended" && (e.why === "activating" || e.why === "recovering")) throw new FloeError("E_UNAVAILABLE", `run "${run}" is being started here; try again in a moment`);
    if ((e.record.paused !== undefined) === pause) return summarize(e); // already so: nothing to change
    const { paused: _was, ...rest } = e.record;
    const mark: PauseMark = { by, at: clockNow() };
    const record: RunRecord = pause ? { ...rest, paused: mark } : rest;
    // On disk before it takes effect: a restart right after the answer finds the run as answered.
    await files.writeRunJson("active", record.ref, record);
    if (this.d.clustered) await state.setValue(pauseKey(run), pause ? JSON.stringify(mark) : "");
    const now = table.get(run);
    if (now === undefined || now.state === "archived" || now.state === "pending") throw notActive(run, now?.state ?? "archived");
    const { paused: _old, ...base } = now.record;
    const revised = table.revise(run, pause ? { ...base, paused: mark } : base);
    if (revised.state === "active") {
      if (pause) revised.executor.pause();
      else revised.executor.unpause();
    }
    this.d.publisher.run(revised);
    return summarize(revised);
  }
}

function notActive(run: string, state: string): FloeError {
  return new FloeError("E_RUN_NOT_ACTIVE", state === "archived" ? `run "${run}" has ended; only an active run can be paused or resumed` : `run "${run}" is ${state}; only an active run can be paused or resumed`);
}
