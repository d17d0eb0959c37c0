/**
 * What an agent is asked to do for one task node: options merged (the trigger's under
 * the event's under the node's own, floe's order), the environment assembled (flow env,
 * node env, trigger and form values, the outputs of the task whose event started it, then
 * every earlier node's outputs as `FLOE_OUT_<NODE>_<KEY>`), and workspace paths expanded.
 */
import { envOf, expandWs, mergeOpts, valuesToEnv } from "../flows/expand.js";
import type { Flow, TaskNode } from "../flows/model.js";
import type { RunEventRec } from "./run-record.js";
import type { TriggerInfo } from "./types.js";
import { outputsEnv, type NodeOutputs } from "./upstream-outputs.js";

export interface PreparedTask {
  readonly opts: Readonly<Record<string, unknown>>;
  readonly env: readonly string[];
  /** Lines for the task's log: which `FLOE_OUT_*` names two outputs shared. */
  readonly notes: readonly string[];
}

/** `upstream`: the outputs of the nodes of the run attempt that ended before this task starts, in the flow's order. */
export function prepareTask(flow: Flow, node: TaskNode, trigger: TriggerInfo, event: RunEventRec, ws: string, gitKey: string | undefined, upstream: readonly NodeOutputs[]): PreparedTask {
  const merged = mergeOpts(mergeOpts(trigger.values, event.opts), node.opts);
  const outputs = outputsEnv(upstream);
  const env = [
    ...[...flow.env, ...envOf(node.opts), ...valuesToEnv(trigger.values), ...valuesToEnv(event.values)].map((e) => expandWs(e, ws)),
    // Last, so that no flow env or form field of the same name hides a node's output; and
    // not workspace-expanded: an output `./x` is a value the task wrote, not a path to make.
    ...outputs.env,
  ];
  const opts: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(merged)) {
    if (k === "env" || k === "form") continue;
    opts[k] = v;
  }
  // exec expands its own cmd/shell/args (agent/exec.ts); a fetch location is expanded here.
  if (typeof opts["location"] === "string") opts["location"] = expandWs(opts["location"], ws);
  if (gitKey !== undefined && opts["key-file"] === undefined && (node.type === "git-checkout" || node.type === "git-merge")) opts["key-file"] = gitKey;
  return { opts, env, notes: outputs.collisions };
}
