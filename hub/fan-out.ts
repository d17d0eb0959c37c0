/**
 * Fan-out (`for-each`, `parallel`): what a task's instances are, how many run at once,
 * and how their ends make the task's one end. The executor (run-executor.ts) runs each
 * instance as it runs a task and records it in the run's journal, so that a restart
 * resumes only the instances that had not ended.
 */
import type { TaskResult } from "../agent/contract.js";
import type { TaskNode } from "../flows/model.js";
import type { ArtifactRef, InstanceStatus, NodeState } from "./types.js";

/** One item of a fan-out: `value` is FLOE_ITEM (a listed value, or an artifact's path), `name` FLOE_ITEM_NAME. */
export interface FanItem {
  readonly index: number;
  readonly value: string;
  readonly name: string;
}

/** An artifact offered to `for-each: artifacts`: its name and where the instance finds it. */
export interface ItemFile {
  readonly name: string;
  readonly path: string;
}

/**
 * The items of a for-each task: its listed values, or the artifacts of the node whose
 * event started it (`files`, in their recorded order). An empty list of artifacts is a
 * fan-out of nothing: the task ends good at once, as a loop over nothing does.
 */
export function fanItems(node: TaskNode, files: readonly ItemFile[]): FanItem[] {
  if (node.forEach === undefined) return [];
  if (node.forEach === "artifacts") return files.map((f, index) => ({ index, value: f.path, name: f.name }));
  return node.forEach.map((value, index) => ({ index, value, name: value }));
}

/** The environment an instance gets on top of its task's. */
export function itemEnv(item: FanItem): string[] {
  return [`FLOE_ITEM=${item.value}`, `FLOE_ITEM_NAME=${item.name}`, `FLOE_ITEM_INDEX=${item.index}`];
}

/** An instance as the executor keeps it: its status, and the outputs it wrote. */
export interface InstanceRuntime {
  status: InstanceStatus;
  outputs: Readonly<Record<string, string>>;
  /** What it left in its $FLOE_ARTIFACTS (hub/task-artifacts.ts). */
  artifacts?: readonly ArtifactRef[] | undefined;
}

export function freshInstance(item: FanItem): InstanceRuntime {
  return { status: { index: item.index, item: item.value, name: item.name, state: "waiting" }, outputs: {} };
}

/** Whether an instance is over (its end recorded): a resumed or retried task does not run it again if it ended good. */
export function ended(state: NodeState): boolean {
  return state === "good" || state === "bad" || state === "cancelled";
}

/**
 * The task's result from its instances' (all ended): good when every instance was good by
 * the task's `good` codes; else the exit status of the first that was not (so `use-status`
 * emits it), with a reason that names the instances that failed. Outputs are merged in
 * item order, a later instance's value winning.
 */
export function combine(node: TaskNode, instances: readonly InstanceRuntime[]): TaskResult {
  let outputs: Record<string, string> = {};
  for (const i of instances) outputs = { ...outputs, ...i.outputs };
  const failed = instances.filter((i) => i.status.state !== "good");
  if (failed.length === 0) return { status: node.good[0] ?? 0, outputs };
  const first = failed[0] as InstanceRuntime;
  const named = failed.slice(0, 5).map((i) => `${i.status.name} (${i.status.reason ?? (i.status.exitCode !== undefined ? `exit status ${i.status.exitCode}` : i.status.state)})`);
  const more = failed.length > 5 ? ` and ${failed.length - 5} more` : "";
  return { status: first.status.exitCode ?? -1, reason: `${failed.length} of ${instances.length} instances failed: ${named.join(", ")}${more}`, outputs };
}

/**
 * Runs `run(i)` for each index, at most `limit` at once (all at once when undefined), in
 * order; stops starting new ones once `stop()` says so. Resolves when every started one
 * has finished.
 */
export async function inPool(indices: readonly number[], limit: number | undefined, stop: () => boolean, run: (i: number) => Promise<void>): Promise<void> {
  const queue = [...indices];
  const width = Math.max(1, Math.min(limit ?? queue.length, queue.length));
  const lane = async (): Promise<void> => {
    for (let i = queue.shift(); i !== undefined && !stop(); i = queue.shift()) await run(i);
  };
  await Promise.all(Array.from({ length: width }, lane));
}
