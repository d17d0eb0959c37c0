/**
 * `queue-strategy: debounce` (DESIGN §6.2): a trigger of such a flow is written as a pend
 * (on disk, visible as pending "debouncing until …") but held back from the cluster's
 * pending list for `debounce`. The newest trigger of the flow, cluster-wide, is named in one
 * shared value (last writer wins); when a held pend's window ends it looks there: still the
 * newest, it goes on the pending list and runs like any other; replaced, it ends cancelled
 * ("replaced by a newer trigger …") without ever starting. A burst of triggers, to any
 * hosts, so makes one run: the last one's, with its values. A newer trigger held by this
 * same host ends the one it replaces at once; one on another host is found out when the
 * older one's window ends (so at most one window later).
 */
import type { Logger } from "pino";
import type { RunFiles } from "../store/run-files.js";
import type { ClusterState } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import type { Finisher } from "./finisher.js";
import { pendOf } from "./pend.js";
import type { Publisher } from "./publisher.js";
import type { RunRecord } from "./run-record.js";
import type { RunTable } from "./run-table.js";
import { isObj } from "./wire-checks.js";
import { now } from "../store/clock.js";

export interface DebounceDeps {
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly state: ClusterState;
  readonly finisher: Finisher;
  readonly publisher: Publisher;
  readonly clustered: boolean;
  readonly log: Logger;
  /** A pend went on the shared list: the dispatcher looks. */
  released(): void;
}

/** The shared value naming the newest trigger of a debounced flow. */
function newestKey(flow: string): string {
  return `debounce-${flow}`;
}

/** The reason a held pend shows while it waits. */
export function debouncingReason(until: number): string {
  return `debouncing until ${new Date(until).toISOString()}`;
}

export class Debounce {
  /** Held pends of this host and the timers that end their windows. */
  private readonly held = new Map<string, NodeJS.Timeout>();

  constructor(private readonly d: DebounceDeps) {}

  /** Whether a flow's triggers are debounced. */
  static applies(r: Pick<RunRecord, "flow">): boolean {
    return r.flow.queueStrategy === "debounce" && r.flow.debounceMs !== undefined;
  }

  /**
   * A new trigger of a debounced flow, its pend on disk and in the table: it becomes the
   * flow's newest, the one it replaces (if held here) ends, and its window starts.
   */
  async hold(record: RunRecord): Promise<void> {
    const { state, table } = this.d;
    const run = record.ref.run;
    const until = record.debounceUntil ?? now();
    const before = parseNewest(await state.getValue(newestKey(record.ref.flow)));
    await state.setValue(newestKey(record.ref.flow), JSON.stringify({ run, until }));
    this.d.publisher.run(table.wait(run, debouncingReason(until)));
    this.arm(record, until);
    if (before !== undefined && before !== run && this.held.has(before)) await this.replace(before, run);
  }

  /** After a restart: a held pend found on disk waits out what is left of its window. */
  recover(record: RunRecord): void {
    const until = record.debounceUntil ?? now();
    const e = this.d.table.adopt(record);
    this.d.publisher.run(this.d.table.wait(e.record.ref.run, debouncingReason(until)));
    this.arm(record, until);
  }

  /** Whether a pend is held here in its window (not on the shared list). */
  holds(run: string): boolean {
    return this.held.has(run);
  }

  /** Takes a held pend out of its window (a cancel): true if it was held here. */
  take(run: string): boolean {
    const t = this.held.get(run);
    if (t === undefined) return false;
    clearTimeout(t);
    this.held.delete(run);
    return true;
  }

  stop(): void {
    for (const t of this.held.values()) clearTimeout(t);
    this.held.clear();
  }

  private arm(record: RunRecord, until: number): void {
    const run = record.ref.run;
    const t = setTimeout(() => void this.windowEnded(record).catch((err: unknown) => this.d.log.error({ err: coerceError(err), run }, "a debounced trigger could not be released")), Math.max(0, until - now()));
    t.unref();
    this.held.set(run, t);
  }

  private async windowEnded(record: RunRecord): Promise<void> {
    const run = record.ref.run;
    if (!this.held.delete(run)) return;
    const newest = parseNewest(await this.d.state.getValue(newestKey(record.ref.flow)));
    if (newest !== undefined && newest !== run) {
      await this.replace(run, newest);
      return;
    }
    if (this.d.table.get(run)?.state !== "pending") return; // cancelled meanwhile
    await this.d.state.addPend(pendOf(record, this.d.clustered));
    this.d.log.info({ run, flow: record.ref.flow }, "debounce window passed quietly; the run is queued");
    this.d.released();
  }

  private async replace(run: string, by: string): Promise<void> {
    this.take(run);
    if (this.d.table.get(run)?.state !== "pending") return;
    await this.d.finisher.finish(run, "cancelled", `replaced by a newer trigger (run ${by}) within the debounce window`);
  }
}

function parseNewest(v: string | undefined): string | undefined {
  if (v === undefined || v === "") return undefined;
  try {
    const x: unknown = JSON.parse(v);
    return isObj(x) && typeof x["run"] === "string" ? x["run"] : undefined;
  } catch {
    return undefined;
  }
}
