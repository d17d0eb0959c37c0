/**
 * A run of another host as the shared run index has it, shown as its own host shows it: every
 * node of the run's flow, in the flow's order. The index holds only the nodes whose status
 * the executing host reported; the rest are filled in as a local view has them — the
 * triggers good (the run's own is the one that started it), the nodes not yet reached
 * waiting, or skipped once the run has ended. Statuses of an earlier run attempt (a requeued
 * run's, reported by the host it lost) are not the run's now, and count as not reported.
 */
import type { Flow, FlowNode } from "../flows/model.js";
import { NodeRuntime } from "./node-runtime.js";
import type { NodeStatus, RunDetail, RunSummary } from "./types.js";

export function indexedRunDetail(sum: RunSummary & { readonly name?: string }, reported: readonly NodeStatus[], flow: Flow | undefined): RunDetail {
  const current = new Map(reported.filter((n) => n.runAttempt === sum.attempt).map((n) => [n.id, n]));
  const name = sum.name ?? flow?.name ?? sum.ref.flow;
  // Without the flow (its record is gone and this host lacks that version) the index's nodes are all there is.
  if (flow === undefined) return { ...sum, name, nodes: [...current.values()] };
  return { ...sum, name, nodes: flowNodes(flow).map((n) => current.get(n.id) ?? unreported(n, sum)) };
}

/** A flow's nodes in the order every view lists them: triggers, then tasks and merges. */
export function flowNodes(flow: Flow): FlowNode[] {
  return [...flow.triggers, ...flow.tasks];
}

function unreported(n: FlowNode, sum: RunSummary): NodeStatus {
  const rt = new NodeRuntime(n, sum.attempt);
  if (sum.state === "archived") rt.skipIfUnreached();
  return rt.status();
}
