/**
 * Cluster mode: keeps the shared run index (Redis) in step with this host's run and node
 * events, so any host can list and show any run.
 *
 * Writes go out in batches, one script per batch (ClusterState.indexBatch): a write waits up
 * to `windowMs` for others to join it, so a run's burst on the host that executes it (active,
 * its nodes' statuses, archived) costs one round trip instead of one per event; a run's end
 * closes its batch at the end of the turn, as nothing of that run follows it, and so does a
 * pending run's summary (other hosts look a new run up right after its 201). Only the newest
 * write of an entry (a run's summary, a node's status) is kept until it is sent: one that a
 * newer write supersedes is never sent. Batches go out one at a time, in order.
 *
 * A batch that fails while the state is away is kept (ahead of newer writes, an entry's newest
 * write winning) and sent again with the next batch, by the next flush (cluster sync) or the
 * hub's stop (drain). This host's own reads of the index wait for what it has not sent yet
 * (settle), so a host sees its own writes as it did when each was sent at once.
 */
import type { Logger } from "pino";
import type { ClusterState, IndexWrite } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import type { RunEvent } from "./types.js";

export interface IndexMirrorOptions {
  /** How long a write waits for others to join its batch. @defaultValue 50 ms */
  readonly windowMs?: number;
  /** Most writes in one batch (a script blocks Redis while it runs). @defaultValue 200 */
  readonly maxBatch?: number;
}

/** The write an entry gets when `next` follows `prev` unsent: as the index would apply both. */
function supersede(prev: IndexWrite | undefined, next: IndexWrite): IndexWrite {
  // An ended run stays ended: the index ignores a later write of an earlier state.
  if (prev?.kind === "run" && next.kind === "run" && prev.state === "archived" && next.state !== "archived") return prev;
  return next;
}

/** The index entry a write sets: a run's summary, or one node's status. */
function entryOf(w: IndexWrite): string {
  return w.kind === "run" ? `run:${w.run}` : `node:${w.run}:${w.node}`;
}

/** The index write a run or node event makes, and the entry it writes (undefined: none, a log line). */
export function indexWriteOf(ev: RunEvent): { readonly key: string; readonly w: IndexWrite } | undefined {
  let w: IndexWrite;
  if (ev.type === "run") {
    const s = ev.summary;
    w = { kind: "run", run: s.ref.run, flow: s.ref.flow, state: s.state, json: JSON.stringify(s) };
  } else if (ev.type === "node") w = { kind: "node", run: ev.ref.run, node: ev.node.id, json: JSON.stringify(ev.node) };
  else return undefined;
  return { key: entryOf(w), w };
}

/** How long a run's end waits for the batches in flight before its release (takeWhenIdle). */
const IDLE_WAIT_MS = 250;

export class IndexMirror {
  /** Entry key → its newest write not sent yet, in the order they are to be applied. */
  private pending = new Map<string, IndexWrite>();
  /** The batches being sent, one after the other (resolves when the last is done). */
  private sending: Promise<void> = Promise.resolve();
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private closeSoon: NodeJS.Immediate | undefined;
  /** The last batch failed (the state away): warned once until one goes through. */
  private failing = false;
  private readonly windowMs: number;
  private readonly maxBatch: number;

  constructor(
    private readonly state: ClusterState,
    private readonly log: Logger,
    o: IndexMirrorOptions = {},
  ) {
    this.windowMs = o.windowMs ?? 50;
    this.maxBatch = Math.max(1, o.maxBatch ?? 200);
  }

  write(ev: RunEvent): void {
    const one = indexWriteOf(ev);
    if (one === undefined) return;
    const { key, w } = one;
    const prev = this.pending.get(key);
    // The newest write takes the place of the last: writes of other entries made between
    // the two are applied before it, as when each was sent at once.
    this.pending.delete(key);
    this.pending.set(key, supersede(prev, w));
    // A run's end, and a run entering the list (adopted, or requeued), go out at the end of
    // the turn: another host asked for the run right after its 201 (cancel it, show it) must
    // find it, as it did when every write was sent at once.
    if (w.kind === "run" && (w.state === "archived" || w.state === "pending")) this.closeSoon ??= setImmediate(() => this.kick());
    else this.timer ??= setTimeout(() => this.kick(), this.windowMs).unref();
  }

  /**
   * The writes of `run` not sent yet, taken out in their order, to go with its release
   * (ClusterState.releaseCounted) — or undefined, and they stay, while a batch is in flight
   * or the last one failed: one that fails is sent again later, and must not then overwrite
   * what the release wrote.
   */
  take(run: string): IndexWrite[] | undefined {
    if (this.busy || this.failing) return undefined;
    const out: IndexWrite[] = [];
    for (const [key, w] of this.pending) {
      if (w.run !== run) continue;
      out.push(w);
      this.pending.delete(key);
    }
    return out;
  }

  /**
   * take(), after the batches in flight (if any) are done — they also carry what of the run
   * waited, so its end's writes and archived summary still go with its release rather than
   * in a batch after it. At most IDLE_WAIT_MS: a host whose batches follow one another
   * without a pause ends its runs as take() alone would. Undefined, as take(), while the
   * state is away (the last batch failed) or a batch is still out.
   */
  async takeWhenIdle(run: string): Promise<IndexWrite[] | undefined> {
    if (this.busy && !this.failing) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.sending, new Promise<void>((r) => (timer = setTimeout(r, IDLE_WAIT_MS)))]);
      clearTimeout(timer);
    }
    return this.take(run);
  }

  /** Writes take() gave that did not go (the release was refused): sent as they would have been, newer ones of an entry winning. */
  restore(writes: readonly IndexWrite[]): void {
    for (const w of writes) if (!this.pending.has(entryOf(w))) this.pending.set(entryOf(w), w);
    if (this.pending.size > 0) this.closeSoon ??= setImmediate(() => this.kick());
  }

  /** Writes not sent yet (tests, metrics). */
  get unsent(): number {
    return this.pending.size;
  }

  /**
   * After a failed batch: sends what waits (the failed writes first); throws, keeping what is
   * not written, if the state is still away. Otherwise nothing: writes go out with their
   * batch, and cluster sync, which calls this on every renewal, does not wait for them.
   */
  async flush(): Promise<void> {
    if (!this.failing) return;
    await this.sendAll(true);
  }

  /** Waits for what this host has written so far to reach the index, or fail (its own reads first wait for it). */
  async settle(): Promise<void> {
    if (this.pending.size === 0 && !this.busy) return;
    await this.sendAll(false).catch(() => undefined);
  }

  /** The hub stops: sends everything once; throws, keeping it, if the state is away. */
  async drain(): Promise<void> {
    await this.sendAll(true);
  }

  private kick(): void {
    this.stopTimers();
    void this.sendAll(false).catch(() => undefined);
  }

  private stopTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.closeSoon !== undefined) clearImmediate(this.closeSoon);
    this.timer = undefined;
    this.closeSoon = undefined;
  }

  /**
   * Queues a send of everything pending after the batches already going out; `strict`: the
   * caller hears of a failure (the rest stays pending either way).
   */
  private sendAll(strict: boolean): Promise<void> {
    const run = this.sending.then(async () => {
      this.stopTimers();
      while (this.pending.size > 0) await this.sendBatch();
    });
    this.sending = run.catch(() => undefined);
    this.busy = true;
    const done = this.sending;
    void done.then(() => {
      if (this.sending === done) this.busy = false;
    });
    return strict ? run : this.sending;
  }

  private async sendBatch(): Promise<void> {
    const batch: [string, IndexWrite][] = [];
    for (const [key, w] of this.pending) {
      batch.push([key, w]);
      if (batch.length >= this.maxBatch) break;
    }
    for (const [key] of batch) this.pending.delete(key);
    let refused: readonly { readonly run: string; readonly why: string }[];
    try {
      ({ refused } = await this.state.indexBatch(batch.map(([, w]) => w)));
    } catch (e) {
      // Not written (or not known to be): back in front of the newer writes, each entry's
      // newest write winning. Written twice is harmless: a write sets an entry to a value.
      const back = new Map<string, IndexWrite>();
      for (const [key, w] of batch) {
        const newer = this.pending.get(key);
        back.set(key, newer === undefined ? w : supersede(w, newer));
      }
      for (const [key, w] of this.pending) if (!back.has(key)) back.set(key, w);
      this.pending = back;
      if (!this.failing) this.log.warn({ err: coerceError(e) }, "could not update the run index; will retry");
      this.failing = true;
      throw e;
    }
    this.failing = false;
    for (const r of refused) this.log.warn({ run: r.run, why: r.why }, "the run index refused a write of this run");
  }
}
