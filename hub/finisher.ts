/**
 * The end of a run here: its end checked against the cluster (a run taken over while this
 * host was away is not recorded), its result written, its folder moved to `archive`, its
 * resources released, and the news published. Ends run in the background; a stop drains
 * them (a full disk stops being waited for then: the run stays active on disk, and the
 * next start finishes it).
 */
import type { Logger } from "pino";
import type { RunDirState, RunFiles } from "../store/run-files.js";
import { retry } from "../store/backoff.js";
import { whenRoom } from "../store/when-room.js";
import type { ClusterState } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import type { NodeFiles } from "./node-files.js";
import type { Publisher } from "./publisher.js";
import type { RunRecord } from "./run-record.js";
import type { RunTable } from "./run-table.js";
import type { RunResult } from "./types.js";

export interface FinisherDeps {
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly nodeFiles: NodeFiles;
  readonly state: ClusterState;
  readonly publisher: Publisher;
  readonly log: Logger;
  /** Cluster mode: the state may be away for a while, and ends wait for it. */
  readonly clustered: boolean;
  /** A run ends here (before it is archived): its notifications are made durable. */
  runEnded?(r: RunRecord): Promise<void>;
  /** After a run ended: a slot and its resources are free (the dispatcher), retention. */
  afterEnd(r: RunRecord): Promise<void>;
}

export class Finisher {
  private readonly endings = new Set<Promise<void>>();
  private draining = false;

  constructor(private readonly d: FinisherDeps) {}

  /** A run's executor ended it: finished in the background, waited for by drain(). */
  ended(run: string, result: RunResult, reason: string): void {
    const p = this.finish(run, result, reason).catch((err: unknown) => this.d.log.error({ err: coerceError(err), run }, "archiving failed"));
    this.endings.add(p);
    void p.finally(() => this.endings.delete(p));
  }

  /** Waits for the ends in flight. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.endings]);
  }

  /** The hub stops: ends waiting for room give up, and the rest are waited for. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.settle();
  }

  /**
   * A pend that will never run (replaced): off the shared list, then ended. False when a
   * dispatcher claimed it first (it is no longer a pend).
   */
  async endPending(run: string, result: RunResult, reason: string): Promise<boolean> {
    if (!(await this.d.state.removePend(run))) return false;
    await this.finish(run, result, reason);
    return true;
  }

  /** Records the result, moves the run to archive, frees what it held. */
  async finish(run: string, result: RunResult, reason: string): Promise<void> {
    const { table, files, nodeFiles, state, log } = this.d;
    const e = table.get(run);
    if (e === undefined || e.state === "archived") return;
    const token = e.state === "pending" ? undefined : e.token;
    if (this.d.clustered && token !== undefined && !(await this.persist("check the run's lease", () => state.isCurrent(run, token)))) {
      // Its lease lapsed and the cluster gave the run to another host: nothing more from here.
      log.warn({ run }, "run ended here after the cluster took it over; its end is not recorded");
      await nodeFiles.close(run);
      await files.remove("active", e.record.ref).catch(() => undefined);
      if (table.get(run) === e) table.forget(run);
      return;
    }
    const record: RunRecord = { ...e.record, result, reason, endedAt: Date.now() };
    await nodeFiles.close(run);
    // Before the archive: a crash in between ends the run again at the next start, and the
    // notifier, finding its deliveries made, makes none twice.
    await this.d.runEnded?.(record).catch((err: unknown) => log.error({ err: coerceError(err), run }, "could not record the run's notifications"));
    const from: RunDirState = e.state === "pending" ? "pending" : "active";
    // A full disk pauses the end (the run stays active, its locks held) until there is room.
    await whenRoom(
      async () => {
        await files.writeRunJson(from, record.ref, record);
        await files.move(from, "archive", record.ref);
      },
      (err) => log.error({ err: coerceError(err), run }, "the disk is full: the run's end waits for room"),
      () => this.draining,
    );
    const archived = table.archive(record);
    if (token !== undefined) await this.persist("release the run's resources", () => state.release(run, token));
    log.info({ run, flow: record.ref.flow, result, reason }, "run ended");
    this.d.publisher.run(archived);
    await this.d.afterEnd(record);
  }

  /**
   * A cluster-state call that must happen (a run's end): retried while the broker is away,
   * so work pauses rather than fails. Embedded state never fails, so it runs once.
   */
  persist<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retry(fn, {
      firstMs: 200,
      maxMs: 5000,
      retryIf: () => this.d.clustered,
      onRetry: (e, attempt) => {
        if (attempt === 1) this.d.log.warn({ err: coerceError(e) }, `could not ${what}; retrying until the cluster state is back`);
      },
    });
  }
}
