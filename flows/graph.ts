/**
 * A flow as a graph: nodes, edges labelled by the event tag that links them, and levels
 * for drawing (triggers at level 0; every other node one below its deepest source).
 */
import type { Flow, FlowNode } from "./model.js";
import { emitterIndex } from "./tags.js";

export interface GraphNode {
  readonly id: string;
  readonly name: string;
  readonly class: FlowNode["class"];
  readonly type: string;
  readonly level: number;
}

export interface GraphEdge {
  readonly from: string;
  readonly to: string;
  readonly tag: string;
}

export interface Graph {
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  /** Node ids per level; level 0 holds the triggers. */
  readonly levels: readonly (readonly string[])[];
}

/** The tags a task or merge listens to. */
export function inputsOf(n: FlowNode): readonly string[] {
  if (n.class === "task") return [n.listen];
  if (n.class === "merge") return n.wait;
  return [];
}

export function buildGraph(flow: Flow): Graph {
  const edges: GraphEdge[] = [];
  const emitterOf = emitterIndex(flow);
  for (const n of flow.tasks) {
    for (const tag of inputsOf(n)) {
      const src = emitterOf(tag);
      if (src === "activation") for (const t of flow.triggers) edges.push({ from: t.id, to: n.id, tag });
      else if (src !== undefined) edges.push({ from: src.id, to: n.id, tag });
    }
  }
  const sources = new Map<string, string[]>();
  for (const e of edges) sources.set(e.to, [...(sources.get(e.to) ?? []), e.from]);
  const triggerIds = new Set(flow.triggers.map((t) => t.id));
  const level = new Map<string, number>();
  // Longest path from the triggers, depth first with an explicit stack (a 10,000-task chain
  // must not overflow the call stack), ignoring edges back onto the current path so a
  // listen cycle can not loop (floe bug 5).
  const onPath = new Set<string>();
  const levelOf = (start: string): number => {
    const stack: { id: string; i: number; l: number }[] = [{ id: start, i: 0, l: 1 }];
    onPath.add(start);
    let result = 0;
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { id: string; i: number; l: number };
      if (triggerIds.has(top.id)) {
        result = 0;
      } else {
        const srcs = sources.get(top.id) ?? [];
        if (top.i < srcs.length) {
          const s = srcs[top.i++] as string;
          if (onPath.has(s)) continue;
          const known = triggerIds.has(s) ? 0 : level.get(s);
          if (known !== undefined) {
            top.l = Math.max(top.l, known + 1);
            continue;
          }
          onPath.add(s);
          stack.push({ id: s, i: 0, l: 1 });
          continue;
        }
        level.set(top.id, top.l);
        result = top.l;
      }
      stack.pop();
      onPath.delete(top.id);
      const parent = stack[stack.length - 1];
      if (parent !== undefined) parent.l = Math.max(parent.l, result + 1);
    }
    return triggerIds.has(start) ? 0 : (level.get(start) ?? 1);
  };
  const nodes: GraphNode[] = [...flow.triggers, ...flow.tasks].map((n) => ({ id: n.id, name: n.name, class: n.class, type: n.type, level: levelOf(n.id) }));
  const levels: string[][] = [];
  for (const n of nodes) (levels[n.level] ??= []).push(n.id);
  return { nodes, edges, levels: levels.map((l) => l ?? []) };
}
