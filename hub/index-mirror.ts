/**
 * Cluster mode: keeps the shared run index (Redis) in step with this host's run and node
 * events, so any host can list and show any run. Writes go out in order on one connection;
 * a write that fails while the state is away is kept (the newest per entry) and written
 * again by the next flush (cluster sync, and the hub's stop).
 */
import type { Logger } from "pino";
import type { ClusterState } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import type { RunEvent } from "./types.js";

export class IndexMirror {
  private seq = 0;
  /** Entry key → the sequence number of its latest write in flight. */
  private readonly inFlight = new Map<string, { seq: number; done: Promise<void> }>();
  /** Writes that failed while the cluster state was away, newest per entry. */
  private readonly backlog = new Map<string, () => Promise<void>>();

  constructor(
    private readonly state: ClusterState,
    private readonly log: Logger,
  ) {}

  write(ev: RunEvent): void {
    let key: string;
    let write: () => Promise<void>;
    if (ev.type === "run") {
      const entry = { run: ev.summary.ref.run, flow: ev.summary.ref.flow, state: ev.summary.state, json: JSON.stringify(ev.summary) };
      key = `run:${entry.run}`;
      write = () => this.state.indexRun(entry);
    } else if (ev.type === "node") {
      const { run } = ev.ref;
      const json = JSON.stringify(ev.node);
      key = `node:${run}:${ev.node.id}`;
      write = () => this.state.indexNode(run, ev.node.id, json);
    } else return;
    // A newer write of the same entry supersedes an older one, failed or still in flight.
    this.backlog.delete(key);
    const seq = ++this.seq;
    const done = write().then(
      () => {
        if (this.inFlight.get(key)?.seq === seq) this.inFlight.delete(key);
      },
      (e: unknown) => {
        if (this.inFlight.get(key)?.seq !== seq) return;
        this.inFlight.delete(key);
        if (this.backlog.size === 0) this.log.warn({ err: coerceError(e) }, "could not update the run index; will retry");
        this.backlog.set(key, write);
      },
    );
    this.inFlight.set(key, { seq, done });
  }

  /** Writes what failed before; throws (keeping the rest) if the state is still away. */
  async flush(): Promise<void> {
    for (const [key, write] of [...this.backlog]) {
      await write();
      if (this.backlog.get(key) === write) this.backlog.delete(key);
    }
  }

  /** Waits for the writes in flight, then tries the backlog once (a stop). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()].map((w) => w.done));
    await this.flush();
  }
}
