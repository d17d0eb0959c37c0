/**
 * A flow as a graph: nodes, edges labelled by the event tag that links them, and levels
 * for drawing (triggers at level 0; every other node one below its deepest source).
 */
import type { Flow, FlowNode } from "./model.js";
import { emitterOf } from "./tags.js";

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
  for (const n of flow.tasks) {
    for (const tag of inputsOf(n)) {
      const src = emitterOf(flow, tag);
      if (src === "activation") for (const t of flow.triggers) edges.push({ from: t.id, to: n.id, tag });
      else if (src !== undefined) edges.push({ from: src.id, to: n.id, tag });
    }
  }
  const sources = new Map<string, string[]>();
  for (const e of edges) sources.set(e.to, [...(sources.get(e.to) ?? []), e.from]);
  const triggerIds = new Set(flow.triggers.map((t) => t.id));
  const level = new Map<string, number>();
  const onPath = new Set<string>();
  // Depth-first, ignoring edges back onto the current path, so a listen cycle cannot recurse forever (floe bug 5).
  const levelOf = (id: string): number => {
    if (triggerIds.has(id)) return 0;
    const known = level.get(id);
    if (known !== undefined) return known;
    onPath.add(id);
    let l = 1;
    for (const s of sources.get(id) ?? []) if (!onPath.has(s)) l = Math.max(l, levelOf(s) + 1);
    onPath.delete(id);
    level.set(id, l);
    return l;
  };
  const nodes: GraphNode[] = [...flow.triggers, ...flow.tasks].map((n) => ({ id: n.id, name: n.name, class: n.class, type: n.type, level: levelOf(n.id) }));
  const levels: string[][] = [];
  for (const n of nodes) (levels[n.level] ??= []).push(n.id);
  return { nodes, edges, levels: levels.map((l) => l ?? []) };
}
