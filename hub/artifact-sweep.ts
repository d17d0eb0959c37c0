/**
 * Pruning artifacts with the runs (mark and sweep): the objects every run this host keeps
 * references — pending (a re-run's replayed nodes), active and archived — are marked; the
 * others go, once older than `common.artifacts.grace` (a task may have stored an object whose
 * end is not recorded yet; a store of the same bytes renews it). A sweep runs when
 * retention dropped runs and at start, at most once per interval, and again when it had to
 * leave young objects. The cluster's bucket is not swept here: its entries expire (README,
 * "Artifacts").
 */
import type { Logger } from "pino";
import type { ArtifactSettings } from "../flows/model.js";
import type { ObjectStore, SweepResult } from "../store/object-store.js";
import type { RunFiles } from "../store/run-files.js";
import { coerceError } from "./errors.js";
import type { RunRecord, StatusLine } from "./run-record.js";
import type { RunTable } from "./run-table.js";
import { readRecords } from "./status-files.js";

export interface ArtifactSweepDeps {
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly objects: ObjectStore;
  readonly log: Logger;
  settings(): ArtifactSettings;
}

const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 10 * 60_000;

export class ArtifactSweep {
  private running: Promise<SweepResult | undefined> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  /** As if one had just run: the first sweep after a start waits an interval, not adding to the start's work. */
  private lastAt = Date.now();
  private stopped = false;

  constructor(private readonly d: ArtifactSweepDeps) {}

  /** Runs that referenced objects were dropped: sweep soon. */
  request(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.lastAt + this.interval() - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sweep();
    }, wait);
    this.timer.unref();
  }

  /** Marks and sweeps now: after the sweep running, if one is (one at a time). */
  sweep(): Promise<SweepResult | undefined> {
    if (this.running !== undefined) return this.running.then(() => this.sweep());
    this.running = this.once().finally(() => {
      this.running = undefined;
      this.lastAt = Date.now();
      if (this.again) {
        this.again = false;
        this.request();
      }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private interval(): number {
    return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, this.d.settings().graceMs));
  }

  private async once(): Promise<SweepResult | undefined> {
    try {
      const keep = await this.mark();
      const res = await this.d.objects.sweep(keep, this.d.settings().graceMs);
      if (res.removed > 0) this.d.log.info({ removed: res.removed, bytes: res.bytes, kept: keep.size }, "artifacts pruned");
      // Unreferenced but young: looked at again once they may have aged.
      if (res.young > 0) this.again = true;
      return res;
    } catch (e) {
      this.d.log.error({ err: coerceError(e) }, "pruning artifacts failed");
      return undefined;
    }
  }

  /** Every object a run this host keeps references. */
  private async mark(): Promise<Set<string>> {
    const keep = new Set<string>();
    const add = (list: readonly { readonly sha256: string }[] | undefined): void => {
      for (const a of list ?? []) keep.add(a.sha256);
    };
    for (const e of [...this.d.table.all()]) {
      for (const n of e.record.replay ?? []) add(n.artifacts);
      if (e.state === "pending") continue;
      if (e.state === "active") for (const n of e.executor.statuses()) add(n.artifacts);
      // Every end its journal recorded (not only the last one): what is on disk is what a restart
      // restores; and a for-each task's instances that ended while others still run.
      for (const l of await this.journalOf(e.record, e.state === "archived" ? "archive" : "active")) {
        if (l.t === "done") add(l.event?.artifacts);
        if (l.t === "inst") add(l.artifacts);
      }
    }
    return keep;
  }

  private async journalOf(r: RunRecord, dir: "active" | "archive"): Promise<StatusLine[]> {
    try {
      const recs = await readRecords(this.d.files, dir, r);
      return [...recs.statuses.values()].flat();
    } catch {
      // Moved meanwhile (archived, or pruned): its other folder, or nothing to keep.
      if (dir === "active") return this.journalOf(r, "archive");
      return [];
    }
  }
}
