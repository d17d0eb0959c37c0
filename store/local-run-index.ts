/**
 * The run index of the in-process state (store/local-state.ts): run summaries and node
 * statuses in memory, with the same rules as the Redis index (store/redis-run-index.ts,
 * store/redis-index-scripts.ts): an ended run stays ended, and no late write of an earlier
 * state undoes a later one.
 */
import type { IndexedRun, IndexQuery, IndexWrite } from "./cluster-state.js";

export class LocalRunIndex {
  private readonly runs = new Map<string, IndexedRun>();
  private readonly nodes = new Map<string, Map<string, string>>();

  async indexRun(r: IndexedRun): Promise<void> {
    const old = this.runs.get(r.run);
    // An ended run stays ended, and no late write of an earlier state (of its attempt, or of an
    // earlier attempt) undoes a later one: as the Redis index does (redis-index-scripts.ts).
    if (old?.state === "archived" && r.state !== "archived") return;
    if (old !== undefined && old.state !== r.state) {
      const was = attemptOf(old.json);
      const now = attemptOf(r.json);
      if (now < was || (now === was && INDEX_RANK[r.state] < INDEX_RANK[old.state])) return;
    }
    this.runs.set(r.run, r);
  }

  async indexNode(run: string, node: string, json: string): Promise<void> {
    let m = this.nodes.get(run);
    if (m === undefined) this.nodes.set(run, (m = new Map()));
    m.set(node, json);
  }

  async indexBatch(writes: readonly IndexWrite[]): Promise<{ readonly refused: readonly { readonly run: string; readonly why: string }[] }> {
    for (const w of writes) {
      if (w.kind === "run") await this.indexRun(w);
      else await this.indexNode(w.run, w.node, w.json);
    }
    return { refused: [] };
  }

  async getRun(run: string): Promise<{ json: string; nodes: Record<string, string> } | undefined> {
    const r = this.runs.get(run);
    if (r === undefined) return undefined;
    return { json: r.json, nodes: Object.fromEntries(this.nodes.get(run) ?? []) };
  }

  async listRuns(q: IndexQuery): Promise<string[]> {
    return [...this.runs.values()]
      .filter((r) => (q.flow === undefined || r.flow === q.flow) && (q.state === undefined || r.state === q.state) && (q.before === undefined || r.run < q.before))
      .sort((a, b) => (a.run < b.run ? 1 : -1))
      .slice(0, q.limit)
      .map((r) => r.json);
  }

  async countRuns(flow: string): Promise<Record<"pending" | "active" | "archived", number>> {
    const out = { pending: 0, active: 0, archived: 0 };
    for (const r of this.runs.values()) if (r.flow === flow) out[r.state]++;
    return out;
  }
}

const INDEX_RANK: Readonly<Record<IndexedRun["state"], number>> = { pending: 0, active: 1, archived: 2 };

/** A run summary's attempt (1 where it says none). */
function attemptOf(json: string): number {
  try {
    const v: unknown = JSON.parse(json);
    if (typeof v === "object" && v !== null && "attempt" in v && typeof v.attempt === "number") return v.attempt;
  } catch {
    // not JSON: counted as the first attempt
  }
  return 1;
}
