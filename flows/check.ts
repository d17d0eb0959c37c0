/**
 * Checks that need the whole flow: duplicate ids, tags nobody emits, nodes that can never
 * run, no reachable end, listen cycles. Tag problems are warnings, because floe's own
 * examples contain such slips and must still load (`--strict` makes them errors).
 */
import { closest, type Diagnostics } from "./diagnostics.js";
import { inputsOf } from "./graph.js";
import type { Flow, FlowNode, MergeNode, TaskNode } from "./model.js";
import type { NodePlaces } from "./parse-node.js";
import { allEmittable, emitsOf, emitterIndex, TRIGGER_GOOD } from "./tags.js";

export function checkFlow(flow: Flow, places: ReadonlyMap<FlowNode, NodePlaces>, flowPos: number, d: Diagnostics, isFlowFile = false): void {
  const label = `flow ${flow.id} (ver ${flow.ver})`;
  const seen = new Map<string, FlowNode>();
  for (const n of [...flow.triggers, ...flow.tasks]) {
    if (seen.has(n.id)) d.error(places.get(n)?.id ?? flowPos, `${label} has two nodes with id "${n.id}"; ids must be unique across triggers and tasks`);
    else seen.set(n.id, n);
  }
  if (flow.tasks.length === 0) {
    if (flow.flowFile === undefined && !isFlowFile) d.warn(flowPos, `${label} has no tasks`);
    return;
  }
  if (flow.triggers.length === 0 && flow.flowFile === undefined && !isFlowFile) d.warn(flowPos, `${label} has no triggers; only "floe run" or the API can start it`);

  const emitter = emitterIndex(flow);
  const emittable = allEmittable(flow);
  const tasksById = new Map(flow.tasks.map((n) => [n.id, n] as const));
  let hintBudget = HINT_BUDGET;
  for (const n of flow.tasks) {
    const p = places.get(n);
    inputsOf(n).forEach((tag, i) => {
      if (tag === "" || emitter(tag) !== undefined) return; // "" = a missing listen, already reported
      const at = (n.class === "merge" ? p?.wait[i] : p?.listen) ?? p?.node ?? flowPos;
      hintBudget -= emittable.length;
      d.warn(at, `${n.class} "${n.id}" ${n.class === "merge" ? "waits for" : "listens to"} "${tag}", which no node of ${label} emits${hint(tasksById, tag, hintBudget >= 0 ? emittable : [])}`);
    });
  }

  // Which nodes can ever run, starting from trigger.good: a work-list over the listened-to
  // tags, so a flow of thousands of nodes is checked in linear time. A node whose problem was
  // reported already (broken, or listening to a tag nobody emits) is assumed to run, so that
  // what follows it, and a missing end, are not reported again as if they were new mistakes.
  const broken = (n: FlowNode): boolean => places.get(n)?.broken === true;
  const reported = (n: FlowNode): boolean => broken(n) || inputsOf(n).some((t) => emitter(t) === undefined);
  const listeners = new Map<string, (TaskNode | MergeNode)[]>();
  const emitsListened = new Map<FlowNode, string[]>(); // the listened-to tags each node can emit
  const missing = new Map<FlowNode, number>(); // merges of type all: waits not reached yet
  for (const n of flow.tasks) {
    const ins = new Set(inputsOf(n));
    if (n.class === "merge" && n.type === "all") missing.set(n, ins.size);
    for (const tag of ins) {
      push(listeners, tag, n);
      const src = emitter(tag);
      if (src !== undefined && src !== "activation") push(emitsListened, src, tag);
    }
  }
  const reached = new Set<string>();
  const fired = new Set<FlowNode>();
  const queue: string[] = [];
  const reach = (tag: string): void => {
    if (reached.has(tag)) return;
    reached.add(tag);
    queue.push(tag);
  };
  const fire = (n: FlowNode): void => {
    if (fired.has(n)) return;
    fired.add(n);
    for (const t of emitsListened.get(n) ?? []) reach(t);
  };
  reach(TRIGGER_GOOD);
  for (const n of flow.tasks) if (reported(n)) fire(n);
  for (let tag = queue.pop(); tag !== undefined; tag = queue.pop()) {
    for (const n of listeners.get(tag) ?? []) {
      const left = missing.get(n);
      if (left !== undefined) missing.set(n, left - 1);
      if (left === undefined || left === 1) fire(n);
    }
  }
  for (const n of flow.tasks) {
    if (fired.has(n)) continue;
    d.warn(places.get(n)?.node ?? flowPos, `${n.class} "${n.id}" of ${label} can never run: what it ${n.class === "merge" ? "waits for" : "listens to"} is never reached from trigger.good`);
  }
  if (!flow.tasks.some((n) => (n.class === "task" && n.type === "end" && fired.has(n)) || broken(n))) {
    d.warn(flowPos, `${label} has no reachable end node; its runs end when nothing is left to do`);
  }
  for (const cycle of findCycles(flow, emitter)) {
    const first = cycle[0];
    const node = first === undefined ? undefined : tasksById.get(first);
    d.warn((node && places.get(node)?.node) ?? flowPos, `listen cycle in ${label}: ${[...cycle, first].join(" → ")}; runs may loop for ever`);
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}

/** Edit-distance comparisons spent on "did you mean" hints for tags, per flow. */
const HINT_BUDGET = 1_000_000;

function hint(tasksById: ReadonlyMap<string, TaskNode | MergeNode>, tag: string, emittable: readonly string[]): string {
  const [cls, id, sub] = tag.split(".");
  const node = tasksById.get(id ?? "");
  if (node !== undefined) {
    const e = emitsOf(node);
    const sameSub = e.tags.find((t) => t.endsWith(`.${sub ?? ""}`));
    if (cls !== node.class && sameSub !== undefined) return ` (did you mean "${sameSub}"? "${id}" is a ${node.class})`;
    if (node.class === "task" && node.ignoreFail && sub !== "good") return ` ("${id}" has ignore-fail, so it only emits ${e.tags.join(", ")})`;
    if (node.class === "task" && node.useStatus && (sub === "good" || sub === "bad")) return ` ("${id}" has use-status, so it emits task.${id}.<exit code>)`;
    if (node.class === "task" && node.type === "end") return ` ("${id}" is an end node and emits nothing)`;
  }
  const c = closest(tag, emittable);
  return c === undefined ? "" : ` (did you mean "${c}"?)`;
}

/** Cycles of the listen graph, each found by one back edge of a depth-first walk (no recursion: flows may be long chains). */
function findCycles(flow: Flow, emitter: (tag: string) => FlowNode | "activation" | undefined): string[][] {
  const next = new Map<string, string[]>();
  for (const n of flow.tasks) {
    for (const tag of inputsOf(n)) {
      const src = emitter(tag);
      if (src === undefined || src === "activation") continue;
      push(next, src.id, n.id);
    }
  }
  const cycles: string[][] = [];
  const done = new Set<string>();
  const onStack = new Map<string, number>(); // id → its index in `stack`
  const stack: { id: string; next: number }[] = [];
  for (const root of flow.tasks) {
    if (done.has(root.id) || onStack.has(root.id)) continue;
    stack.push({ id: root.id, next: 0 });
    onStack.set(root.id, 0);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top === undefined) break;
      const to = (next.get(top.id) ?? [])[top.next++];
      if (to === undefined) {
        stack.pop();
        onStack.delete(top.id);
        done.add(top.id);
      } else if (onStack.has(to)) {
        // A long cycle is named by its ends, so that many long cycles can not flood the output.
        const from = onStack.get(to) ?? 0;
        const ids = (a: number, b?: number): string[] => stack.slice(a, b).map((f) => f.id);
        cycles.push(stack.length - from <= 8 ? ids(from) : [...ids(from, from + 4), "…", ...ids(stack.length - 3)]);
      } else if (!done.has(to)) {
        onStack.set(to, stack.length);
        stack.push({ id: to, next: 0 });
      }
    }
  }
  return cycles;
}
