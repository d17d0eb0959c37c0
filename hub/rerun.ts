/**
 * Re-run a run, from the start or from one of its nodes (DESIGN §6.3 `rerun`). The new run
 * executes the old run's flow snapshot with its trigger values. Re-run from a node: the
 * nodes that lead to it (its ancestors in the flow's graph) are not executed again; the ends
 * they recorded in the old run — tags, outputs, form values — travel in the new run's record
 * (`replay`), so whichever host of the cluster takes it replays them (run-executor.ts) and
 * execution starts at that node. "Retry failed" is a re-run from the first node that ended
 * bad. Both runs link to each other: the new one's `rerunOf`, the old one's `reruns` (in its
 * run.json where this host has it, and in the shared state for every host).
 *
 * Replayed nodes keep their artifacts: later tasks of the re-run find them under
 * `$FLOE_INPUTS` (fetched from the cluster's bucket by whichever host runs them). Other files
 * that earlier nodes left in the workspace are not restored on a fresh workspace.
 */
import { buildGraph } from "../flows/graph.js";
import type { Config, Flow } from "../flows/model.js";
import { mergeTag } from "../flows/tags.js";
import type { RunFiles } from "../store/run-files.js";
import type { Adoption } from "./adoption.js";
import type { ClusterState } from "./cluster-state.js";
import { FloeError } from "./errors.js";
import { definitionHash, defOf } from "./on-update.js";
import { recordFromState } from "./pend.js";
import type { Queries } from "./queries.js";
import { makeRef, type ReplayedNode, type RunRecord } from "./run-record.js";
import type { RunTable } from "./run-table.js";
import type { NodeStatus, RerunLink, RunDetail, RunId, RunSummary, TriggerInfo } from "./types.js";
import { isObj } from "./wire-checks.js";
import { now } from "../store/clock.js";

export interface RerunRequest {
  /** The node to start from; absent: from the start (or, with `failed`, the first that ended bad). */
  readonly from?: string;
  /** Retry failed: from the first node that ended bad. */
  readonly failed?: boolean;
  /** Run the flow's current definition instead of the old run's snapshot (re-running tainted runs). */
  readonly current?: boolean;
  /** Who asked. */
  readonly by: string;
}

export interface RerunDeps {
  readonly host: string;
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly state: ClusterState;
  readonly queries: Queries;
  readonly adoption: Adoption;
  readonly clustered: boolean;
  readonly newRunId: () => string;
  readonly config: () => Config;
  /** The flow's current definition (what new runs are adopted with). */
  current(flow: string): Flow;
}

/** The shared-state key of the list of a run's re-runs. */
function rerunsKey(run: string): string {
  return `reruns-${run}`;
}

export class Reruns {
  constructor(private readonly d: RerunDeps) {}

  async rerun(oldRun: string, req: RerunRequest): Promise<RunSummary> {
    const src = await this.source(oldRun);
    const { detail, trigger } = src;
    const flow = req.current === true ? this.d.current(detail.ref.flow) : src.flow;
    if (detail.state !== "archived") throw new FloeError("E_RUN_NOT_ENDED", `run "${oldRun}" is ${detail.state}; only a run that has ended can be re-run`);
    const from = req.from ?? (req.failed === true ? firstFailed(detail) : undefined);
    if (req.failed === true && from === undefined) throw new FloeError("E_RERUN_NOTHING_FAILED", `run "${oldRun}" has no node that ended bad; nothing to retry`);
    const replay = from === undefined ? undefined : replayFor(flow, detail, from);
    const link: RerunLink = { run: oldRun as RunId, ...(from !== undefined ? { from } : {}) };
    const run = this.d.newRunId();
    const record: RunRecord = {
      v: 1,
      ref: makeRef(flow.id, flow.ver, run, this.d.host),
      flow,
      trigger: { ...trigger, by: req.by },
      adoptedAt: now(),
      attempt: 1,
      rerunOf: link,
      ...(req.current === true ? { def: definitionHash(flow) } : src.def !== undefined ? { def: src.def } : {}),
      ...(replay !== undefined ? { replay } : {}),
    };
    const sum = await this.d.adoption.adopt(record);
    await this.linkBack(oldRun, { run: run as RunId, ...(from !== undefined ? { from } : {}), ...(req.current === true && record.def !== undefined ? { def: record.def } : {}) });
    return sum;
  }

  /** The re-runs made of a run, as every host sees them. */
  async rerunsOf(run: string): Promise<RerunLink[]> {
    const local = this.d.table.get(run)?.record.reruns ?? [];
    const shared = parseLinks(await this.d.state.getValue(rerunsKey(run)));
    const out = [...local];
    for (const l of shared) if (!out.some((x) => x.run === l.run)) out.push(l);
    return out;
  }

  /** The old run as the API shows it, the flow it ran and its trigger. */
  private async source(run: string): Promise<{ detail: RunDetail; flow: Flow; trigger: TriggerInfo; def?: string }> {
    const detail = await this.d.queries.getRun(run);
    const local = this.d.table.get(run);
    if (local !== undefined) return { detail, flow: local.record.flow, trigger: local.record.trigger, def: defOf(local.record) };
    // Another host's run: its record while the cluster keeps it, else this host's copy of that flow version.
    const rec = recordFromState(await this.d.state.getRecord(run));
    const flow = rec?.ref.run === run ? rec.flow : this.d.config().flows.find((f) => f.id === detail.ref.flow && f.ver === detail.ref.ver);
    if (flow === undefined) throw new FloeError("E_FLOW_NOT_FOUND", `the flow run "${run}" ran (${detail.ref.flow} version ${detail.ref.ver}) is not known on this host; ask the host that ran it`);
    return { detail, flow, trigger: detail.trigger, ...(detail.def !== undefined ? { def: detail.def } : {}) };
  }

  /** The old run lists its re-runs: in its run.json when this host has it, and in the shared state. */
  private async linkBack(oldRun: string, link: RerunLink): Promise<void> {
    const e = this.d.table.get(oldRun);
    if (e?.state === "archived") {
      const record: RunRecord = { ...e.record, reruns: [...(e.record.reruns ?? []), link] };
      await this.d.files.writeRunJson("archive", record.ref, record);
      this.d.table.revise(oldRun, record);
    }
    if (this.d.clustered) {
      const shared = parseLinks(await this.d.state.getValue(rerunsKey(oldRun)));
      await this.d.state.setValue(rerunsKey(oldRun), JSON.stringify([...shared, link]));
    }
  }
}

/** The first node (by when it ended) whose task ended bad or was cut short. */
function firstFailed(detail: RunDetail): string | undefined {
  const bad = detail.nodes.filter((n) => n.class === "task" && (n.state === "bad" || n.state === "cancelled") && n.endedAt !== undefined);
  bad.sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
  return bad[0]?.id;
}

/**
 * The nodes leading to `from` — every node with a path to it — with the ends the old run
 * recorded for them, in the order they ended. Refused: an unknown node, a trigger, a node
 * the old run never reached.
 */
export function replayFor(flow: Flow, detail: RunDetail, from: string): ReplayedNode[] {
  const node = [...flow.triggers, ...flow.tasks].find((n) => n.id === from);
  if (node === undefined) throw new FloeError("E_RERUN_FROM_UNKNOWN", `flow "${flow.id}" has no node "${from}" (nodes: ${flow.tasks.map((n) => n.id).join(", ")})`);
  if (node.class === "trigger") throw new FloeError("E_RERUN_FROM_TRIGGER", `"${from}" is a trigger; re-run without from to start from the trigger`);
  const status = new Map(detail.nodes.map((n) => [n.id, n]));
  const at = status.get(from);
  if (at === undefined || !reached(at)) throw new FloeError("E_RERUN_FROM_UNREACHED", `node "${from}" was never reached in run "${detail.ref.run}"; a re-run can start only from a node the run reached`);
  const sources = new Map<string, string[]>();
  for (const e of buildGraph(flow).edges) sources.set(e.to, [...(sources.get(e.to) ?? []), e.from]);
  const ancestors = new Set<string>();
  const stack = [...(sources.get(from) ?? [])];
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (id === from || ancestors.has(id)) continue;
    ancestors.add(id);
    stack.push(...(sources.get(id) ?? []));
  }
  const out: ReplayedNode[] = [];
  for (const n of flow.tasks) {
    const s = status.get(n.id);
    if (!ancestors.has(n.id) || s === undefined) continue;
    if (n.class === "merge") {
      if (s.state !== "good") continue;
      // A merge's event carries the values of the events it waited for.
      let values: Record<string, string> = {};
      for (const w of n.wait) for (const r of out) if (r.tag === w) values = { ...values, ...r.values };
      out.push({ id: n.id, state: "good", tag: mergeTag(n.id), values, endedAt: s.endedAt ?? 0 });
      continue;
    }
    if ((s.state !== "good" && s.state !== "bad") || s.tag === undefined) continue;
    out.push({ id: n.id, state: s.state, tag: s.tag, ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}), values: { ...(s.outputs ?? {}), ...(n.type === "data" ? (s.values ?? {}) : {}) }, endedAt: s.endedAt ?? 0, ...(s.artifacts !== undefined ? { artifacts: s.artifacts } : {}) });
  }
  return out.sort((a, b) => a.endedAt - b.endedAt);
}

function reached(s: NodeStatus): boolean {
  return s.startedAt !== undefined || (s.state !== "waiting" && s.state !== "skipped");
}

function parseLinks(v: string | undefined): RerunLink[] {
  if (v === undefined || v === "") return [];
  try {
    const x: unknown = JSON.parse(v);
    if (!Array.isArray(x)) return [];
    return x.flatMap((l: unknown) => (isObj(l) && typeof l["run"] === "string" ? [{ run: l["run"] as RunId, ...(typeof l["from"] === "string" ? { from: l["from"] } : {}), ...(typeof l["def"] === "string" ? { def: l["def"] } : {}) }] : []));
  } catch {
    return [];
  }
}
