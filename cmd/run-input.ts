/**
 * Input for the data nodes of a `floe run`: values given as `--set NODE.FIELD=value`, then,
 * on a terminal, answers to prompts for the fields still open. Values are checked by the
 * hub as the API checks them (hub/data-input.ts); without a terminal a node that still
 * lacks required fields is a message saying how to give them.
 */
import { errorMessage } from "../flows/errors.js";
import { readForm, type FormField } from "../flows/forms.js";
import type { Flow } from "../flows/model.js";
import { missingFields } from "../hub/data-input.js";
import type { NodeStatus } from "../hub/types.js";
import { UsageError } from "./flags.js";

/** `--set` values: the trigger's, and each data node's (by node id). */
export interface SetValues {
  readonly trigger: Readonly<Record<string, string>>;
  readonly nodes: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

/** `--set KEY=value` is a trigger value; `--set NODE.FIELD=value`, where NODE is a data node of the flow, is input for that node. */
export function splitSets(flow: Flow, sets: readonly string[]): SetValues {
  const dataNodes = new Set(flow.tasks.filter((n) => n.class === "task" && n.type === "data").map((n) => n.id));
  const trigger: Record<string, string> = {};
  const nodes = new Map<string, Record<string, string>>();
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UsageError(`--set ${s}: expected key=value (or NODE.FIELD=value for a data node)`);
    const key = s.slice(0, eq);
    const value = s.slice(eq + 1);
    const dot = key.indexOf(".");
    const node = dot > 0 ? key.slice(0, dot) : undefined;
    if (node !== undefined && dataNodes.has(node)) {
      const values = nodes.get(node) ?? {};
      values[key.slice(dot + 1)] = value;
      nodes.set(node, values);
    } else trigger[key] = value;
  }
  return { trigger, nodes };
}

/** Asks one question on the terminal; rejects when the run is interrupted. */
export type Ask = (question: string) => Promise<string>;

/** What the hub offers for posting input (Hub.postData). */
export type Post = (values: Readonly<Record<string, string>>) => NodeStatus;

/**
 * Completes a data node that waits for input. Returns undefined when it was completed, or
 * the message to end the run with when it can not be (no terminal and fields missing).
 */
export async function answerDataNode(flow: Flow, status: NodeStatus, sets: SetValues, post: Post, ask: Ask | undefined, say: (line: string) => void): Promise<string | undefined> {
  const node = flow.tasks.find((n) => n.id === status.id);
  const form = node === undefined ? undefined : readForm(node.opts).form;
  let now = post(sets.nodes.get(status.id) ?? {});
  if (form === undefined || now.enabled !== true) return undefined;
  if (ask === undefined) {
    const missing = missingFields(form, now.values ?? {});
    const optional = form.fields.filter((f) => !missing.includes(f.id) && (now.values ?? {})[f.id] === undefined).map((f) => f.id);
    return `run needs input at node ${status.id} (fields: ${missing.join(", ")}${optional.length > 0 ? `; optional: ${optional.join(", ")}` : ""}); give them with --set ${status.id}.FIELD=value`;
  }
  say(`floe run: node ${status.id} waits for input${form.title !== "" ? `: ${form.title}` : ""}`);
  // Every field not given yet once, then the required ones still empty until they are filled.
  let open: readonly FormField[] = form.fields.filter((f) => (now.values ?? {})[f.id] === undefined);
  while (now.enabled === true) {
    const answers: Record<string, string> = {};
    for (const f of open) {
      const answer = await ask(`${f.prompt}${f.required ? "" : " (optional)"}${f.value !== undefined ? ` [${f.value}]` : ""}${f.options !== undefined ? ` (${f.options.join(", ")})` : ""}: `);
      if (answer !== "") answers[f.id] = answer;
    }
    try {
      now = post(answers);
    } catch (e) {
      // A value the form refuses (text for a number field): say why and ask again.
      say(`floe run: ${errorMessage(e)}`);
      continue;
    }
    const missing = missingFields(form, now.values ?? {});
    open = form.fields.filter((f) => missing.includes(f.id));
  }
  return undefined;
}
