/**
 * A task's work, as its run's executor (run-executor.ts) has it done: one execution
 * through the agent (its options, environment, secrets, scratch folders and artifacts), a
 * child run for a `type: flow` task (child-runs.ts), or the instances of a for-each task
 * (fan-out.ts). What it records and says goes through the executor: its journal, its
 * numbered log lines, its node events.
 */
import type { TaskResult, TaskType } from "../agent/contract.js";
import type { TaskNode } from "../flows/model.js";
import type { ChildResult, TaskInstance } from "./child-runs.js";
import { errorMessage } from "./errors.js";
import type { ExecutorDeps } from "./executor-deps.js";
import { combine, ended, fanItems, freshInstance, inPool, itemEnv, type FanItem, type InstanceRuntime, type ItemFile } from "./fan-out.js";
import type { NodeRuntime } from "./node-runtime.js";
import type { RunEventRec, RunRecord, StatusLine } from "./run-record.js";
import { prepareTask } from "./task-request.js";
import { itemFilesOf, type NodeArtifacts } from "./task-artifacts.js";
import type { ArtifactRef, LogLine } from "./types.js";
import type { NodeOutputs } from "./upstream-outputs.js";
import { now } from "../store/clock.js";

/** What a task's work uses of its run's executor. */
export interface TaskWorkHost {
  readonly record: RunRecord;
  readonly deps: ExecutorDeps;
  /** The run's nodes, in the flow's order. */
  readonly nodes: ReadonlyMap<string, NodeRuntime>;
  /** Whether the run has ended (nothing more of it is recorded). */
  ended(): boolean;
  journal(node: string, line: StatusLine, o?: { lazy?: boolean }): void;
  line(node: string, l: { at: number; text: string; stream: LogLine["stream"] }, instance?: number): void;
  sysLine(node: string, text: string, instance?: number): void;
  /** Resolves when the node's status lines written so far are on disk. */
  durable(node: string): Promise<void>;
  publishNode(id: string): void;
}

export type TaskOutcome = TaskResult & { readonly artifacts?: readonly ArtifactRef[] };

export class TaskWork {
  constructor(private readonly h: TaskWorkHost) {}

  /**
   * One execution of a task's work, as the agent reports it: its options and environment
   * read now (every node that ended by now, retries included, is upstream of it), the
   * host's secrets added, its output lines numbered and its process group recorded; with
   * the artifacts it left (task-artifacts.ts), for the caller to record with its end.
   */
  async execute(node: TaskNode, rt: NodeRuntime, ev: RunEventRec, signal: AbortSignal, item?: FanItem): Promise<TaskOutcome> {
    const prepared = prepareTask(this.h.record.flow, node, this.h.record.trigger, ev, this.h.deps.workspace, this.h.deps.gitKey, this.upstreamOutputs());
    const { opts, notes } = prepared;
    for (const note of notes) this.h.sysLine(node.id, note, item?.index);
    const env = item !== undefined ? [...prepared.env, ...itemEnv(item)] : prepared.env;
    // A child run's instance has `item` among its trigger values: the listed value, or the artifact's name.
    if (node.type === "flow") return this.runChild(node, rt, env, signal, item !== undefined ? { index: item.index, item: item.name, ...(node.forEach === "artifacts" ? { artifact: item.value } : {}) } : undefined);
    // Read as the task starts, on the host that runs it: each host has its own secrets.
    const secrets = this.h.deps.secrets.resolve(this.h.record.flow.secrets ?? []);
    if ("error" in secrets) return { status: -1, error: secrets.error, outputs: {} };
    let group: number | undefined;
    let files;
    try {
      // Each instance of a for-each task has directories of its own.
      files = await this.h.deps.artifacts.prepare(this.h.record.ref.run, node.id, node.type, item !== undefined ? `${rt.attempts}.${item.index}` : String(rt.attempts), this.upstreamArtifacts(node.id));
    } catch (e) {
      return { status: -1, error: `could not place the task's inputs ($FLOE_INPUTS): ${errorMessage(e)}`, outputs: {} };
    }
    try {
      const result = await this.h.deps.runTask({
        runId: this.h.record.ref.run,
        flowId: this.h.record.ref.flow,
        nodeId: node.id,
        ...(this.h.record.ref.execHost !== undefined ? { host: this.h.record.ref.execHost } : {}),
        attempt: this.h.record.attempt,
        type: node.type as TaskType,
        opts,
        // Last: a secret is what the flow asked for, whatever its env says.
        env: [...env, ...files.env, ...(item !== undefined && node.forEach === "artifacts" ? [`FLOE_ITEM=${files.input(item.value)}`] : []), ...secrets.env],
        workspace: this.h.deps.workspace,
        cacheDir: this.h.deps.cacheDir,
        signal,
        onLine: (l) => this.h.line(node.id, l, item?.index),
        // Not synced on its own: it is read after a crash of this host's processes, which
        // leaves what they wrote; a crash of the machine leaves no process group to kill.
        onStart: ({ pgid }) => {
          group = pgid;
          rt.groups.add(pgid);
          this.h.journal(node.id, { t: "pgid", at: now(), pgid }, { lazy: true });
        },
      });
      if (this.h.ended()) return result; // nothing of it is recorded
      const kept = await files.collect();
      if ("error" in kept) return { ...result, error: kept.error };
      return kept.artifacts.length > 0 ? { ...result, artifacts: kept.artifacts } : result;
    } finally {
      if (group !== undefined) rt.groups.delete(group);
      // Not waited for: the task's end need not wait on the file system's journal for the
      // removal of its scratch folders (the run's end removes what is left).
      void files.dispose();
    }
  }

  /** A `type: flow` task (child-runs.ts): the child it started before a restart is re-attached to, not started again. */
  private async runChild(node: TaskNode, rt: NodeRuntime, env: readonly string[], signal: AbortSignal, instance?: TaskInstance): Promise<ChildResult> {
    if (this.h.deps.children === undefined) return { status: -1, error: "child runs are not available on this host", outputs: {} };
    const slot = instance?.index ?? -1;
    const result = await this.h.deps.children.run({
      parent: this.h.record,
      node,
      env,
      upstream: this.upstreamArtifacts(node.id),
      signal,
      ...(instance !== undefined ? { instance } : {}),
      ...(rt.children.has(slot) ? { known: rt.children.get(slot) as string } : {}),
      started: async (run) => {
        rt.children.set(slot, run);
        rt.shown.set(slot, run);
        this.h.journal(node.id, { t: "child", at: now(), run, ...(instance !== undefined ? { instance: instance.index } : {}) });
        await this.h.durable(node.id);
        this.h.publishNode(node.id);
      },
      line: (text) => this.h.sysLine(node.id, text, instance?.index),
    });
    // Taken as this try's result: a retry starts a new child (a stopping host's run is not recorded, see suspend()).
    rt.children.delete(slot);
    return result;
  }

  /** The artifacts of this run attempt's other nodes that have ended (a task's inputs). */
  private upstreamArtifacts(except: string): NodeArtifacts[] {
    const out: NodeArtifacts[] = [];
    for (const rt of this.h.nodes.values()) if (rt.node.id !== except && rt.artifacts !== undefined && rt.artifacts.length > 0) out.push({ node: rt.node.id, artifacts: rt.artifacts });
    return out;
  }

  /**
   * A for-each task: its instances that have not ended run (at most `parallel` at once),
   * each recorded in the journal as it starts and ends, so that a restart runs only the
   * others again; their ends make the task's one result (fan-out.ts).
   */
  async fanOut(node: TaskNode, rt: NodeRuntime, ev: RunEventRec, signal: AbortSignal): Promise<TaskOutcome> {
    const items = fanItems(node, this.itemFiles(ev));
    const known = rt.instances;
    const instances = items.map((it) => known?.[it.index] ?? freshInstance(it));
    rt.instances = instances;
    this.h.publishNode(node.id);
    const todo = items.filter((it) => !ended((instances[it.index] as InstanceRuntime).status.state)).map((it) => it.index);
    if (todo.length < items.length) this.h.sysLine(node.id, `${items.length - todo.length} of ${items.length} instances ended before; running the other ${todo.length}`);
    await inPool(todo, node.parallel, () => signal.aborted || this.h.ended(), async (index) => {
      const item = items[index] as FanItem;
      const inst = instances[index] as InstanceRuntime;
      const startedAt = now();
      const base = { index, item: item.value, name: item.name, startedAt };
      inst.status = { ...base, state: "running" };
      this.h.journal(node.id, { t: "inst", at: startedAt, index, item: item.value, name: item.name, state: "running" });
      this.h.publishNode(node.id);
      const r = await this.execute(node, rt, ev, signal, item);
      if (this.h.ended()) return;
      const good = r.error === undefined && node.good.includes(r.status);
      const state = signal.aborted ? "cancelled" : good ? "good" : "bad";
      const said = r.error ?? r.reason;
      const reason = said !== undefined ? this.h.deps.secrets.mask(said) : good ? undefined : `exit status ${r.status}`;
      const exitCode = r.error === undefined ? r.status : undefined;
      const at = now();
      inst.status = { ...base, state, endedAt: at, ...(exitCode !== undefined ? { exitCode } : {}), ...(reason !== undefined ? { reason } : {}) };
      inst.outputs = this.h.deps.secrets.maskValues(r.outputs);
      inst.artifacts = r.artifacts;
      this.h.journal(node.id, { t: "inst", at, index, item: item.value, name: item.name, state, ...(exitCode !== undefined ? { exitCode } : {}), ...(reason !== undefined ? { reason } : {}), outputs: inst.outputs, ...(r.artifacts !== undefined ? { artifacts: r.artifacts } : {}) });
      this.h.publishNode(node.id);
    });
    if (signal.aborted) return { status: -1, reason: errorMessage(signal.reason), outputs: {} };
    // The task's artifacts: its instances' together (task-artifacts.ts).
    const result = combine(node, instances);
    const kept = this.h.deps.artifacts.combineInstances(instances.map((i) => i.artifacts), this.upstreamArtifacts(node.id));
    if ("error" in kept) return { ...result, error: kept.error };
    return kept.artifacts.length > 0 ? { ...result, artifacts: kept.artifacts } : result;
  }

  /** The artifacts `for-each: artifacts` runs over: those of the node whose event started the task. */
  private itemFiles(ev: RunEventRec): ItemFile[] {
    // Relative to the instance's $FLOE_INPUTS, where execute() places every ended node's artifacts.
    return itemFilesOf(ev);
  }

  /** The outputs of this run attempt's nodes that have ended, in the flow's order (`this.h.nodes` is built in it). */
  private upstreamOutputs(): NodeOutputs[] {
    const out: NodeOutputs[] = [];
    for (const rt of this.h.nodes.values()) if (rt.outputs !== undefined) out.push({ node: rt.node.id, outputs: rt.outputs });
    return out;
  }
}
