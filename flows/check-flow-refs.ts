/**
 * Checks over a whole config of the flows that `type: flow` tasks start (child runs): the
 * flow (and version) must be defined, and no flow may start itself, directly or through
 * others — every `flow:` value on such a cycle is reported, at its line and column, with
 * the cycle spelled out. Flows loaded from a flow-file are checked when they are loaded; a
 * cycle through one is stopped at run time by the nesting bound (hub/child-runs.ts).
 */
import { didYouMean, type Diagnostics } from "./diagnostics.js";
import type { Flow, TaskNode } from "./model.js";

/** A flow task as written: the flow it is in, and where its `flow:` value is. */
export interface FlowRef {
  readonly from: Flow;
  readonly node: TaskNode;
  readonly pos: number;
}

export function checkFlowRefs(flows: readonly Flow[], refs: readonly FlowRef[], d: Diagnostics): void {
  const ids = new Set(flows.map((f) => f.id));
  const edges = new Map<string, Set<string>>();
  const known: FlowRef[] = [];
  for (const ref of refs) {
    const target = ref.node.opts["flow"];
    if (typeof target !== "string") continue; // reported by the node's checks
    const ver = ref.node.opts["ver"];
    const label = `task "${ref.node.id}" of flow ${ref.from.id}`;
    if (!ids.has(target)) {
      d.error(ref.pos, `${label} starts flow "${target}", which this config does not define${didYouMean(target, ids)}`);
      continue;
    }
    if (typeof ver === "number" && !flows.some((f) => f.id === target && f.ver === ver)) {
      const vers = flows.filter((f) => f.id === target).map((f) => f.ver);
      d.error(ref.pos, `${label} starts flow "${target}" version ${ver}, which this config does not define (versions: ${vers.join(", ")})`);
      continue;
    }
    known.push(ref);
    const out = edges.get(ref.from.id) ?? new Set<string>();
    out.add(target);
    edges.set(ref.from.id, out);
  }
  for (const ref of known) {
    const target = ref.node.opts["flow"] as string;
    const back = pathBetween(edges, target, ref.from.id);
    if (back === undefined) continue;
    const cycle = [ref.from.id, ...back];
    const how = cycle.length === 2 ? "starts itself" : "starts itself through other flows";
    d.error(ref.pos, `task "${ref.node.id}" of flow ${ref.from.id} ${how}: ${cycle.join(" → ")}; a flow may not start itself, directly or through others`);
  }
}

/** The flows from `from` to `to` along the edges (both ends included), breadth first: the shortest way round. */
function pathBetween(edges: ReadonlyMap<string, ReadonlySet<string>>, from: string, to: string): string[] | undefined {
  const cameFrom = new Map<string, string | undefined>([[from, undefined]]);
  const queue = [from];
  for (let i = 0; i < queue.length; i++) {
    const at = queue[i] as string;
    if (at === to) {
      const path: string[] = [];
      for (let x: string | undefined = at; x !== undefined; x = cameFrom.get(x)) path.unshift(x);
      return path;
    }
    for (const next of edges.get(at) ?? []) {
      if (cameFrom.has(next)) continue;
      cameFrom.set(next, at);
      queue.push(next);
    }
  }
  return undefined;
}
