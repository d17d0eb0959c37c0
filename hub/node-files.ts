/**
 * The open append-only files of active runs: each run's journal (the status records of all
 * its nodes, and floe's own lines about them) and the log of each task that printed, kept open while the run is active here
 * and closed (flushed) when it ends or stops.
 */
import type { AppendLog } from "../store/append-log.js";
import type { RunFiles } from "../store/run-files.js";
import type { RunJournal } from "../store/run-journal.js";
import type { RunRecord } from "./run-record.js";

interface OpenRun {
  readonly journal: RunJournal;
  /** Logs of nodes that printed; a log file is made by its first line, not before. */
  readonly logs: Map<string, AppendLog>;
}

export class NodeFiles {
  private readonly open = new Map<string, OpenRun>();

  constructor(private readonly files: RunFiles) {}

  private entry(r: RunRecord): OpenRun {
    let o = this.open.get(r.ref.run);
    if (o === undefined) {
      o = { journal: this.files.openJournal("active", r.ref), logs: new Map() };
      this.open.set(r.ref.run, o);
    }
    return o;
  }

  /** The run's journal (made at activation, with run.json: one folder sync covers both). */
  journal(r: RunRecord): RunJournal {
    return this.entry(r).journal;
  }

  /** A node's output file, opened (and made) on its first line. */
  log(r: RunRecord, node: string): AppendLog {
    const o = this.entry(r);
    let f = o.logs.get(node);
    if (f === undefined) {
      f = this.files.openLog(this.files.nodeLogPath("active", r.ref, node));
      o.logs.set(node, f);
    }
    return f;
  }

  /** The open journal of a run, if any (a reader of its floe lines flushes it first). */
  openJournal(run: string): RunJournal | undefined {
    return this.open.get(run)?.journal;
  }

  /** The open log of a node, if any (a reader flushes it first). */
  openLog(run: string, node: string): AppendLog | undefined {
    return this.open.get(run)?.logs.get(node);
  }

  async close(run: string): Promise<void> {
    const o = this.open.get(run);
    if (o === undefined) return;
    this.open.delete(run);
    await Promise.allSettled([o.journal.close(), ...[...o.logs.values()].map((f) => f.close())]);
  }

  async closeAll(): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const run of [...this.open.keys()]) await this.close(run).catch((e: unknown) => errors.push(e));
    return errors;
  }
}
