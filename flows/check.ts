/**
 * Checks that need the whole flow: duplicate ids, tags nobody emits, nodes that can never
 * run, no reachable end, listen cycles. Tag problems are warnings, because floe's own
 * examples contain such slips and must still load (`--strict` makes them errors).
 */
import { closest, type Diagnostics } from "./diagnostics.js";
import { inputsOf } from "./graph.js";
import type { Flow, FlowNode } from "./model.js";
import type { NodePlaces } from "./parse-node.js";
import { allEmittable, emitsOf, emitterOf, TRIGGER_GOOD } from "./tags.js";

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

  const emittable = allEmittable(flow);
  for (const n of flow.tasks) {
    const p = places.get(n);
    inputsOf(n).forEach((tag, i) => {
      if (tag === "" || emitterOf(flow, tag) !== undefined) return; // "" = a missing listen, already reported
      const at = (n.class === "merge" ? p?.wait[i] : p?.listen) ?? p?.node ?? flowPos;
      d.warn(at, `${n.class} "${n.id}" ${n.class === "merge" ? "waits for" : "listens to"} "${tag}", which no node of ${label} emits${hint(flow, tag, emittable)}`);
    });
  }

  // Which nodes can ever run, starting from trigger.good. A broken node (its type or listen
  // already reported) is assumed to run, so that what follows it is not reported as well.
  const broken = (n: FlowNode): boolean => places.get(n)?.broken === true;
  const reached = new Set<string>([TRIGGER_GOOD]);
  const fired = new Set<FlowNode>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of flow.tasks) {
      if (fired.has(n)) continue;
      const ins = inputsOf(n);
      const ok = broken(n) || (n.class === "merge" && n.type === "all" ? ins.every((t) => reached.has(t)) : ins.some((t) => reached.has(t)));
      if (!ok) continue;
      fired.add(n);
      changed = true;
      const e = emitsOf(n);
      for (const t of e.tags) reached.add(t);
      if (e.anyStatus && n.class === "task") for (const c of n.good) reached.add(`task.${n.id}.${c}`);
      if (e.anyStatus) for (const t of emittable) if (t.startsWith(`task.${n.id}.`)) reached.add(t);
    }
  }
  for (const n of flow.tasks) {
    if (fired.has(n)) continue;
    if (!inputsOf(n).every((t) => emitterOf(flow, t) !== undefined)) continue; // already reported above
    d.warn(places.get(n)?.node ?? flowPos, `${n.class} "${n.id}" of ${label} can never run: what it ${n.class === "merge" ? "waits for" : "listens to"} is never reached from trigger.good`);
  }
  if (!flow.tasks.some((n) => (n.class === "task" && n.type === "end" && fired.has(n)) || broken(n))) {
    d.warn(flowPos, `${label} has no reachable end node; its runs end when nothing is left to do`);
  }
  for (const cycle of findCycles(flow)) {
    const first = cycle[0];
    const node = flow.tasks.find((n) => n.id === first);
    d.warn((node && places.get(node)?.node) ?? flowPos, `listen cycle in ${label}: ${[...cycle, first].join(" → ")}; runs may loop for ever`);
  }
}

function hint(flow: Flow, tag: string, emittable: readonly string[]): string {
  const [cls, id, sub] = tag.split(".");
  const node = [...flow.tasks].find((n) => n.id === id);
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

/** Simple cycles of the listen graph, each reported once. */
function findCycles(flow: Flow): string[][] {
  const next = new Map<string, string[]>();
  for (const n of flow.tasks) {
    for (const tag of inputsOf(n)) {
      const src = emitterOf(flow, tag);
      if (src !== undefined && src !== "activation") next.set(src.id, [...(next.get(src.id) ?? []), n.id]);
    }
  }
  const cycles: string[][] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (id: string): void => {
    state.set(id, 1);
    stack.push(id);
    for (const to of next.get(id) ?? []) {
      const s = state.get(to);
      if (s === 1) cycles.push(stack.slice(stack.indexOf(to)));
      else if (s === undefined) visit(to);
    }
    stack.pop();
    state.set(id, 2);
  };
  for (const n of flow.tasks) if (!state.has(n.id)) visit(n.id);
  return cycles;
}
