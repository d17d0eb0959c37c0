/**
 * The cluster-wide run index on Redis (part of store/redis-state.ts's ClusterState): each
 * run's summary JSON and node statuses, sorted sets by flow and state for listing newest
 * first, at most `archivedPerFlow` archived runs per flow (older ones are trimmed, their node
 * hashes with them). Its writes go in batches (INDEX_APPLY, store/redis-index-scripts.ts), on
 * their own or with a pend's adoption or a run's release (applyArgs, applied).
 */
import type { Redis } from "ioredis";
import type { IndexedRun, IndexQuery, IndexWrite } from "./cluster-state.js";
import type { IndexState, RedisKeys } from "./redis-keys.js";
import { SCRIPTS } from "./redis-scripts.js";
import { asArray, asStrings, pairs } from "./redis-replies.js";

export interface RedisRunIndexDeps {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly archivedPerFlow: number;
  /** Runs a command as the state does: a failure becomes the state's error (unavailable, or not). */
  call<T>(op: string, f: () => Promise<T>): Promise<T>;
  fail(op: string, e: unknown): Error;
}

export class RedisRunIndex {
  constructor(private readonly d: RedisRunIndexDeps) {}

  async indexRun(r: IndexedRun): Promise<void> {
    const { refused } = await this.indexBatch([{ kind: "run", ...r }]);
    const first = refused[0];
    if (first !== undefined) throw this.d.fail("indexRun", `run ${first.run}: ${first.why}`);
  }

  async indexBatch(writes: readonly IndexWrite[]): Promise<{ readonly refused: readonly { readonly run: string; readonly why: string }[] }> {
    if (writes.length === 0) return { refused: [] };
    const { keys, args } = this.applyArgs(writes);
    const [trimmed, refused] = asArray(await this.d.call("indexBatch", () => SCRIPTS.indexBatch.run(this.d.redis, keys, args)), "indexBatch", 2);
    return { refused: await this.applied(trimmed, refused, "indexBatch") };
  }

  /** The keys and arguments of INDEX_APPLY (store/redis-index-scripts.ts) for `writes`. */
  applyArgs(writes: readonly IndexWrite[]): { keys: string[]; args: (string | number)[] } {
    const k = this.d.keys;
    const states: IndexState[] = ["pending", "active", "archived"];
    const keys = [k.indexJson, k.indexState, k.indexFlow, k.indexAll, ...states.map((s) => k.indexByState(s)), k.indexTrash];
    const args: (string | number)[] = [this.d.archivedPerFlow];
    for (const w of writes) {
      if (w.kind === "run") {
        keys.push(k.indexByFlow(w.flow), ...states.map((s) => k.indexByFlowState(w.flow, s)));
        args.push("r", w.run, w.flow, w.state, w.json);
      } else {
        keys.push(k.nodes(w.run));
        args.push("n", w.run, w.node, w.json);
      }
    }
    return { keys, args };
  }

  /** What INDEX_APPLY answered: the writes refused; the node hashes of runs it trimmed from the index go. */
  async applied(trimmed: unknown, refusedFlat: unknown, what: string): Promise<{ run: string; why: string }[]> {
    const refused: { run: string; why: string }[] = [];
    const r = asStrings(refusedFlat, what);
    for (let i = 0; i + 1 < r.length; i += 2) refused.push({ run: r[i] as string, why: r[i + 1] as string });
    const gone = asStrings(trimmed, what);
    if (gone.length > 0) {
      // Their entries left the index in the script; their node hashes go now, or, if that
      // fails, with a later batch (they stay in the trash): the writes were applied, so the
      // batch must not fail and be sent again.
      const m = this.d.redis.multi();
      for (const run of gone) m.unlink(this.d.keys.nodes(run));
      m.srem(this.d.keys.indexTrash, ...gone);
      await m.exec().catch(() => undefined);
    }
    return refused;
  }

  async indexNode(run: string, node: string, json: string): Promise<void> {
    await this.d.call("indexNode", () => this.d.redis.hset(this.d.keys.nodes(run), node, json));
  }

  async getRun(run: string): Promise<{ json: string; nodes: Record<string, string> } | undefined> {
    const r = asArray(await this.d.call("getRun", () => SCRIPTS.getRun.run(this.d.redis, [this.d.keys.indexJson, this.d.keys.nodes(run)], [run])), "getRun", 1);
    if (r[0] !== 1) return undefined;
    return { json: String(r[1]), nodes: Object.fromEntries(pairs(r[2])) };
  }

  async listRuns(q: IndexQuery): Promise<string[]> {
    const limit = Math.max(0, Math.floor(q.limit));
    if (limit === 0) return [];
    const k = this.d.keys;
    const set = q.flow !== undefined ? (q.state !== undefined ? k.indexByFlowState(q.flow, q.state) : k.indexByFlow(q.flow)) : q.state !== undefined ? k.indexByState(q.state) : k.indexAll;
    const max = q.before === undefined ? "+" : `(${q.before}`;
    return asStrings(await this.d.call("listRuns", () => SCRIPTS.listRuns.run(this.d.redis, [set, k.indexJson], [max, limit])), "listRuns");
  }

  async countRuns(flow: string): Promise<Record<"pending" | "active" | "archived", number>> {
    const k = this.d.keys;
    const [p, a, d] = await this.d.call("countRuns", async () => {
      const res = await this.d.redis.multi().zcard(k.indexByFlowState(flow, "pending")).zcard(k.indexByFlowState(flow, "active")).zcard(k.indexByFlowState(flow, "archived")).exec();
      return (res ?? []).map(([err, n]) => {
        if (err !== null) throw err;
        return Number(n);
      });
    });
    return { pending: p ?? 0, active: a ?? 0, archived: d ?? 0 };
  }
}
