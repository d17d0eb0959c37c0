/**
 * Event tags: the names nodes emit and listen to (`trigger.good`, `task.<id>.good|bad|error`,
 * `task.<id>.<exit code>` with use-status, `merge.<id>.good`). Listening is an exact string
 * match, as in floe.
 */
import type { Flow, FlowNode, MergeNode, TaskNode } from "./model.js";

export const TRIGGER_GOOD = "trigger.good";

export type TaskOutcome = "good" | "bad" | "error";

export function taskTag(id: string, sub: TaskOutcome | number): string {
  return `task.${id}.${sub}`;
}

export function mergeTag(id: string): string {
  return `merge.${id}.good`;
}

/** The nodes an event tag fires, in file order: tasks whose listen equals it, merges that wait for it. */
export function matchTag(flow: Flow, tag: string): (TaskNode | MergeNode)[] {
  return flow.tasks.filter((n) => (n.class === "task" ? n.listen === tag : n.wait.includes(tag)));
}

/** Host tags ⊇ required tags (floe's TagsMatch). */
export function tagsMatch(hostTags: readonly string[], required: readonly string[]): boolean {
  return required.every((t) => hostTags.includes(t));
}

/** The exact tags a node can emit; use-status tasks also emit `task.<id>.<n>` for any n. */
export function emitsOf(n: FlowNode): { readonly tags: readonly string[]; readonly anyStatus: boolean } {
  if (n.class === "trigger") return { tags: [TRIGGER_GOOD], anyStatus: false };
  if (n.class === "merge") return { tags: [mergeTag(n.id)], anyStatus: false };
  switch (n.type) {
    case "end":
      return { tags: [], anyStatus: false };
    case "data":
      return { tags: [taskTag(n.id, "good"), taskTag(n.id, "bad")], anyStatus: false };
    default:
      if (n.ignoreFail) return { tags: [taskTag(n.id, "good")], anyStatus: false };
      if (n.useStatus) return { tags: [taskTag(n.id, "error")], anyStatus: true };
      return { tags: [taskTag(n.id, "good"), taskTag(n.id, "bad"), taskTag(n.id, "error")], anyStatus: false };
  }
}

/** Which node of the flow emits `tag`, if any. `trigger.good` is emitted by the run's activation. */
export function emitterOf(flow: Flow, tag: string): FlowNode | "activation" | undefined {
  if (tag === TRIGGER_GOOD) return "activation";
  for (const n of flow.tasks) {
    const e = emitsOf(n);
    if (e.tags.includes(tag)) return n;
    if (e.anyStatus && n.class === "task" && /^-?\d+$/.test(tag.slice(`task.${n.id}.`.length)) && tag.startsWith(`task.${n.id}.`)) return n;
  }
  return undefined;
}

/**
 * `emitterOf` for many look-ups: the flow is indexed once, so that checking a flow of
 * thousands of nodes stays linear. Same answers as emitterOf for a flow with unique ids.
 */
export function emitterIndex(flow: Flow): (tag: string) => FlowNode | "activation" | undefined {
  const exact = new Map<string, FlowNode>();
  const byStatus = new Map<string, FlowNode>(); // use-status tasks, by id
  for (const n of flow.tasks) {
    const e = emitsOf(n);
    for (const t of e.tags) if (!exact.has(t)) exact.set(t, n);
    if (e.anyStatus && !byStatus.has(n.id)) byStatus.set(n.id, n);
  }
  return (tag) => {
    if (tag === TRIGGER_GOOD) return "activation";
    const hit = exact.get(tag);
    if (hit !== undefined) return hit;
    const status = /^task\.(.+)\.-?\d+$/.exec(tag);
    return status === null ? undefined : byStatus.get(status[1] ?? "");
  };
}

/** Every tag some node of the flow can emit (use-status tasks contribute their good codes). */
export function allEmittable(flow: Flow): string[] {
  const out = [TRIGGER_GOOD];
  for (const n of flow.tasks) {
    const e = emitsOf(n);
    out.push(...e.tags);
    if (e.anyStatus && n.class === "task") for (const c of n.good) out.push(taskTag(n.id, c));
  }
  return out;
}
