/**
 * Tainted runs (DESIGN §6.3 `GET /flows/:id/tainted`): archived runs, as retention keeps
 * them, made by a definition of the flow that has since changed — under the same version or
 * a new one — in a part the run went through. Each comes with the first changed node in run
 * order (a re-run of it with the current definition starts there: rerun.ts, `current`), or
 * none when the change was to the flow's own settings or its triggers (re-run from the start).
 *
 * What is compared: the run's snapshot (its record's flow) and the flow's current
 * definition, node by node in run order (graph levels, then file order), counting only the
 * nodes the run reached — a changed node on a branch the run never took does not taint it.
 */
import { buildGraph } from "../flows/graph.js";
import type { Flow, FlowNode } from "../flows/model.js";
import type { ClusterState } from "./cluster-state.js";
import { definitionHash, defOf } from "./on-update.js";
import { recordFromState } from "./pend.js";
import type { Queries } from "./queries.js";
import type { RunTable } from "./run-table.js";
import type { NodeStatus, RerunLink, RunId, RunResult } from "./types.js";

export interface TaintedRun {
  readonly run: RunId;
  readonly ver: number;
  /** The definition hash the run was made with. */
  readonly def: string;
  readonly result?: RunResult;
  readonly endedAt?: number;
  /** The first changed node the run reached, in run order; absent: re-run from the start. */
  readonly from?: string;
  /** What changed, in words. */
  readonly changed: string;
}

export interface Taint {
  readonly from?: string;
  readonly changed: string;
}

/** Nodes of a flow in run order: by graph level, then as written. */
function runOrder(flow: Flow): FlowNode[] {
  const g = buildGraph(flow);
  const byId = new Map([...flow.triggers, ...flow.tasks].map((n) => [n.id, n]));
  return g.levels.flat().flatMap((id) => byId.get(id) ?? []);
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The flow's settings without its nodes. */
function settings(f: Flow): unknown {
  const { triggers: _t, tasks: _n, ver: _v, ...rest } = f;
  return rest;
}

/**
 * How a run made with `old` is tainted by the flow now being `now`; undefined if it is not
 * (same definition, or changes only in nodes the run never reached).
 */
export function taintOf(old: Flow, now: Flow, nodes: readonly NodeStatus[]): Taint | undefined {
  if (definitionHash(old) === definitionHash(now)) return undefined;
  const reached = new Set(nodes.filter((n) => n.startedAt !== undefined || (n.state !== "waiting" && n.state !== "skipped")).map((n) => n.id));
  const nowById = new Map([...now.triggers, ...now.tasks].map((n) => [n.id, n]));
  for (const n of runOrder(old)) {
    if (n.class === "trigger" || !reached.has(n.id)) continue;
    const m = nowById.get(n.id);
    if (m === undefined) return { changed: `node "${n.id}" was removed` };
    if (!same(n, m)) return { from: n.id, changed: `node "${n.id}" changed` };
  }
  if (!same(settings(old), settings(now))) return { changed: "the flow's settings changed" };
  if (!same(old.triggers, now.triggers)) return { changed: "the flow's triggers changed" };
  const added = now.tasks.filter((n) => !old.tasks.some((o) => o.id === n.id));
  if (added.length > 0) return { changed: `node${added.length > 1 ? "s" : ""} ${added.map((n) => `"${n.id}"`).join(", ")} added` };
  return undefined;
}

export interface TaintedDeps {
  readonly table: RunTable;
  readonly queries: Queries;
  readonly state: ClusterState;
  readonly clustered: boolean;
  /** The flow's current definition (what new runs are adopted with). */
  current(flow: string): Flow;
  /** The re-runs made of a run (rerun.ts): one with the current definition re-processed it. */
  rerunsOf(run: string): Promise<readonly RerunLink[]>;
}

/** At most this many archived runs are looked at per request (retention keeps 200 by default). */
export const TAINTED_LOOK_AT = 500;

export class TaintedRuns {
  constructor(private readonly d: TaintedDeps) {}

  /** The flow's tainted archived runs, newest first. */
  async list(flowId: string, limit = TAINTED_LOOK_AT): Promise<TaintedRun[]> {
    const now = this.d.current(flowId);
    const hash = definitionHash(now);
    const out: TaintedRun[] = [];
    for (const sum of await this.d.queries.queryRuns({ flow: flowId, state: "archived", limit })) {
      const run = sum.ref.run;
      if (sum.def === hash) continue; // made with the current definition
      if ((await this.d.rerunsOf(run)).some((l) => l.def === hash)) continue; // re-run with it already
      const local = this.d.table.get(run);
      const rec = local?.record ?? recordFromState(await this.d.state.getRecord(run));
      const base = { run, ver: sum.ref.ver, def: sum.def ?? (rec !== undefined ? defOf(rec) : "?"), ...(sum.result !== undefined ? { result: sum.result } : {}), ...(sum.endedAt !== undefined ? { endedAt: sum.endedAt } : {}) };
      if (rec === undefined || rec.ref.run !== run) {
        // Its snapshot is with the host that ran it, and the cluster no longer keeps it.
        out.push({ ...base, changed: `made with definition ${base.def}; its snapshot is on host ${sum.ref.execHost ?? sum.ref.adoptedBy}` });
        continue;
      }
      if (defOf(rec) === hash) continue;
      const detail = await this.d.queries.getRun(run);
      const taint = taintOf(rec.flow, now, detail.nodes);
      if (taint !== undefined) out.push({ ...base, ...(taint.from !== undefined ? { from: taint.from } : {}), changed: taint.changed });
    }
    return out;
  }
}
