/**
 * What an agent is asked to do for one task node: options merged (the trigger's under
 * the event's under the node's own, floe's order), the environment assembled (flow env,
 * node env, trigger and form values, upstream outputs), and workspace paths expanded.
 */
import { envOf, expandWs, mergeOpts, valuesToEnv } from "../flows/expand.js";
import type { Flow, TaskNode } from "../flows/model.js";
import type { RunEventRec } from "./run-record.js";
import type { TriggerInfo } from "./types.js";

export interface PreparedTask {
  readonly opts: Readonly<Record<string, unknown>>;
  readonly env: readonly string[];
}

export function prepareTask(flow: Flow, node: TaskNode, trigger: TriggerInfo, event: RunEventRec, ws: string, gitKey: string | undefined): PreparedTask {
  const merged = mergeOpts(mergeOpts(trigger.values, event.opts), node.opts);
  const env = [
    ...flow.env,
    ...envOf(node.opts),
    ...valuesToEnv(trigger.values),
    ...valuesToEnv(event.values),
  ].map((e) => expandWs(e, ws));
  const opts: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(merged)) {
    if (k === "env" || k === "form") continue;
    opts[k] = v;
  }
  // exec expands its own cmd/shell/args (agent/exec.ts); a fetch location is expanded here.
  if (typeof opts["location"] === "string") opts["location"] = expandWs(opts["location"], ws);
  if (gitKey !== undefined && opts["key-file"] === undefined && (node.type === "git-checkout" || node.type === "git-merge")) opts["key-file"] = gitKey;
  return { opts, env };
}
