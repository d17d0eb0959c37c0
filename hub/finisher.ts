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
import { indexWriteOf, type IndexMirror } from "./index-mirror.js";
import type { NodeFiles } from "./node-files.js";
import type { Publisher } from "./publisher.js";
import type { RunRecord } from "./run-record.js";
import type { RunTable } from "./run-table.js";
import type { ArtifactRef, NodeStatus, RunResult } from "./types.js";
import { now } from "../store/clock.js";

export interface FinisherDeps {
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly nodeFiles: NodeFiles;
  readonly state: ClusterState;
  readonly publisher: Publisher;
  readonly log: Logger;
  /** Cluster mode: the state may be away for a while, and ends wait for it. */
  readonly clustered: boolean;
  /** Cluster mode: the run index's writes not sent yet (a run's last ones go with its release). */
  readonly mirror?: IndexMirror;
  /** A run ends here (before it is archived): its notifications are made durable. */
  runEnded?(r: RunRecord): Promise<void>;
  /**
   * After a run ended: a slot and its resources are free (the dispatcher), retention.
   * `unattended`: the pends on the shared list after its release that no woken host is about
   * to take (Released.unattended; undefined: no release, a pend's end).
   */
  afterEnd(r: RunRecord, unattended: number | undefined): Promise<void>;
}

export class Finisher {
  private readonly endings = new Set<Promise<void>>();
  /** Runs whose end is being recorded: theirs to finish, whatever the lease does meanwhile. */
  private readonly ending = new Set<string>();
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

  /**
   * Whether the run's end is being recorded: fencing leaves it alone (its tasks have ended,
   * and its release — the commit — tells whether the end counts; a stand-down that dropped
   * it meanwhile would take a committed end for a takeover, since its token is gone then).
   */
  isEnding(run: string): boolean {
    return this.ending.has(run);
  }

  /** Records the result, moves the run to archive, frees what it held. */
  async finish(run: string, result: RunResult, reason: string): Promise<void> {
    if (this.ending.has(run)) return;
    this.ending.add(run);
    try {
      await this.record(run, result, reason);
    } finally {
      this.ending.delete(run);
    }
  }

  private async record(run: string, result: RunResult, reason: string): Promise<void> {
    const { table, files, nodeFiles, state, log } = this.d;
    const e = table.get(run);
    if (e === undefined || e.state === "archived") return;
    const token = e.state === "pending" ? undefined : e.token;
    // No check of the run's lease first: the release below is that check (a run the cluster
    // took over meanwhile is refused there and its copy here dropped), and asking before it
    // too cost Redis a round trip per run for a case that the release must handle anyway —
    // the lease can lapse between the two.
    // A child run's outputs travel with its end to its parent, on whichever host that runs.
    const nodes = e.record.parent !== undefined && e.state === "active" ? e.executor.statuses() : undefined;
    const outputs = nodes === undefined ? undefined : runOutputs(nodes);
    const artifacts = nodes === undefined ? [] : runArtifacts(nodes);
    const record: RunRecord = { ...e.record, result, reason, endedAt: now(), ...(outputs !== undefined ? { outputs } : {}), ...(artifacts.length > 0 ? { artifacts } : {}) };
    await nodeFiles.close(run);
    const from: RunDirState = e.state === "pending" ? "pending" : "active";
    // A full disk pauses the end (the run stays active, its locks held) until there is room.
    const whenDisk = (what: () => Promise<void>) =>
      whenRoom(what, (err) => log.error({ err: coerceError(err), run }, "the disk is full: the run's end waits for room"), () => this.draining);
    // The result first, where the run is: a crash from here on finishes the end at the next start.
    await whenDisk(() => files.writeRunJson(from, record.ref, record));
    // Then the commit point, the release in the cluster: until it is applied the run is not
    // over, and a host cut off meanwhile may lose it — its lease lapses, the cluster runs it
    // again elsewhere, and this end must not be recorded (a run ends once). Refused: its
    // result written above goes with the copy.
    // Cluster: the run's index writes not sent yet, and its archived summary, go with the
    // release and apply only if it commits — one round trip for both, not two.
    const unsent = token !== undefined ? await this.d.mirror?.takeWhenIdle(run) : undefined;
    const ended = indexWriteOf({ v: 1, type: "run", summary: this.d.publisher.summaryOf({ state: "archived", record }) });
    const index = unsent !== undefined && ended !== undefined ? [...unsent, ended.w] : undefined;
    const released = token === undefined ? undefined : await this.persist("release the run's resources", () => state.releaseCounted(run, token, index));
    for (const r of released?.refused ?? []) log.warn({ run: r.run, why: r.why }, "the run index refused a write of this run");
    if (released?.released === false) {
      if (unsent !== undefined) this.d.mirror?.restore(unsent);
      log.warn({ run }, "run ended here, but the cluster took it over before its end was committed; its end is not recorded");
      await files.remove(from, record.ref).catch(() => undefined);
      if (table.get(run) === e) table.forget(run);
      return;
    }
    // Committed: its notifications are made durable before the archive — a crash in between
    // archives it at the next start, and the notifier, finding its deliveries made, makes none twice.
    await this.notifyEnded(record);
    await whenDisk(() => files.move(from, "archive", record.ref));
    const archived = table.archive(record);
    log.info({ run, flow: record.ref.flow, result, reason }, "run ended");
    this.d.publisher.run(archived, { indexed: index !== undefined });
    await this.d.afterEnd(record, released?.unattended);
  }

  /**
   * A run found active at start whose end was committed in the cluster by this host (its
   * result written, its release applied) before the host stopped: only the folder's move
   * and the news were left.
   */
  async archiveCommitted(record: RunRecord): Promise<void> {
    await this.notifyEnded(record);
    await this.d.files.move("active", "archive", record.ref);
    const archived = this.d.table.restore(record);
    this.d.log.info({ run: record.ref.run, flow: record.ref.flow, result: record.result }, "run ended (committed before the host stopped)");
    this.d.publisher.run(archived);
  }

  private async notifyEnded(record: RunRecord): Promise<void> {
    await this.d.runEnded?.(record).catch((err: unknown) => this.d.log.error({ err: coerceError(err), run: record.ref.run }, "could not record the run's notifications"));
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

/** A run's outputs: every node's `$FLOE_OUTPUT` pairs, those of nodes that ended later winning. */
export function runOutputs(nodes: readonly NodeStatus[]): Record<string, string> {
  const ended = nodes.filter((n) => n.outputs !== undefined).sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
  return Object.assign({}, ...ended.map((n) => n.outputs));
}

/** A run's artifacts: every node's, by name, those of nodes that ended later winning (a child's, for its parent's task). */
export function runArtifacts(nodes: readonly NodeStatus[]): ArtifactRef[] {
  const byName = new Map<string, ArtifactRef>();
  for (const n of nodes.filter((x) => x.class !== "trigger" && x.artifacts !== undefined).sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0))) {
    for (const a of n.artifacts ?? []) byName.set(a.name, a);
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
