/**
 * The open append-only files of active runs: each node's status file and each task's log,
 * kept open while the run is active here and closed (flushed) when it ends or stops.
 */
import type { AppendLog } from "../store/append-log.js";
import type { RunFiles } from "../store/run-files.js";
import type { RunRecord } from "./run-record.js";

export type NodeFileKind = "status" | "log";

export class NodeFiles {
  private readonly open = new Map<string, Map<string, AppendLog>>();

  constructor(private readonly files: RunFiles) {}

  /**
   * Every node's status file and every task's log file, made together at activation so
   * that one folder sync covers them all, not one per node as the run reaches it (a node
   * never reached keeps an empty file).
   */
  allOf(r: RunRecord): AppendLog[] {
    const out: AppendLog[] = [];
    for (const n of [...r.flow.triggers, ...r.flow.tasks]) {
      out.push(this.of(r, n.id, "status"));
      if (n.class === "task" && n.type !== "end") out.push(this.of(r, n.id, "log"));
    }
    return out;
  }

  of(r: RunRecord, node: string, kind: NodeFileKind): AppendLog {
    let m = this.open.get(r.ref.run);
    if (m === undefined) {
      m = new Map();
      this.open.set(r.ref.run, m);
    }
    const key = `${kind}:${node}`;
    let f = m.get(key);
    if (f === undefined) {
      f = this.files.openLog(kind === "status" ? this.files.nodeStatusPath("active", r.ref, node) : this.files.nodeLogPath("active", r.ref, node));
      m.set(key, f);
    }
    return f;
  }

  /** The open log of a node, if any (a reader flushes it first). */
  openLog(run: string, node: string): AppendLog | undefined {
    return this.open.get(run)?.get(`log:${node}`);
  }

  async close(run: string): Promise<void> {
    const m = this.open.get(run);
    if (m === undefined) return;
    this.open.delete(run);
    await Promise.allSettled([...m.values()].map((f) => f.close()));
  }

  async closeAll(): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const run of [...this.open.keys()]) await this.close(run).catch((e: unknown) => errors.push(e));
    return errors;
  }
}
