/**
 * This host's hold on its runs when its lease is in doubt (lease.ts). A task starts only
 * while the lease vouches for the host; when it stops vouching the host stands down (kills
 * every task of its runs at once and keeps them suspended); when it vouches again, runs the
 * cluster took meanwhile — their fencing token is no longer this host's — are dropped and
 * nothing more is written for them, and the rest resume (or end lost, for `on-host-loss:
 * fail`: their interrupted task must not run twice).
 */
import type { Logger } from "pino";
import type { HostCommands } from "../agent/contract.js";
import type { RunFiles } from "../store/run-files.js";
import type { ClusterState } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import type { Executors } from "./executors.js";
import type { Finisher } from "./finisher.js";
import type { Lease, Renewal } from "./lease.js";
import type { NodeFiles } from "./node-files.js";
import type { RunTable } from "./run-table.js";
import { readLogCounts, readStatuses } from "./status-files.js";

export interface FencingDeps {
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly nodeFiles: NodeFiles;
  readonly state: ClusterState;
  readonly commands: HostCommands;
  readonly executors: Executors;
  readonly finisher: Finisher;
  readonly log: Logger;
  /** Cluster mode: only then can another host take a run. */
  readonly clustered: boolean;
  lease(): Lease;
  /** Runs may be taken again (the dispatcher). */
  resumed(): void;
}

export class Fencing {
  /** Runs stood down, with their tasks' stopping. */
  private readonly stopping = new Map<string, Promise<void>>();

  constructor(private readonly d: FencingDeps) {}

  /** Whether a run waits on a host cut off from the cluster (commands on it are refused). */
  isStoodDown(run: string): boolean {
    const e = this.d.table.get(run);
    return e?.state === "suspended" && e.why === "stood down";
  }

  /**
   * Whether a task of this run may start here now: only while this host's lease vouches
   * for it. A host stopped or cut off past that point waits for a renewal that vouches
   * again, then checks the run is still its own (its fencing token); while the state can
   * not be reached the task waits (work pauses rather than fails). False: the run is no
   * longer this host's (it is fenced here), or the run stopped meanwhile.
   */
  async mayStartTask(run: string, signal: AbortSignal): Promise<boolean> {
    const lease = this.d.lease();
    if (!this.d.clustered || lease.vouched) return true;
    for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
      if (!(await lease.whenVouched(signal))) return false;
      const e = this.d.table.get(run);
      if (e === undefined || e.state === "pending" || e.state === "archived") return false;
      try {
        if (!(await this.d.state.isCurrent(run, e.token))) {
          this.d.log.warn({ run }, "a task was not started: the run was taken over while this host was away");
          // Not awaited: fencing waits for the tasks of the runs it stops, this one included.
          void this.fence().catch((err: unknown) => this.d.log.error({ err: coerceError(err) }, "fencing failed"));
          return false;
        }
        if (lease.vouched) return true;
      } catch {
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * After a lapsed lease: any run here whose fencing token is no longer current was given
   * to another host. Its tasks are killed here and nothing more is written for it.
   */
  async fence(): Promise<void> {
    for (const e of [...this.d.table.all()]) {
      if (e.state !== "active") continue;
      const run = e.record.ref.run;
      if (this.d.finisher.isEnding(run) || (await this.d.state.isCurrent(run, e.token))) continue;
      // Its end may have begun while the token was read: then the release decides.
      if (this.d.finisher.isEnding(run)) continue;
      if (this.d.table.get(run) !== e) continue;
      this.d.log.warn({ run }, "run taken over by another host; stopping it here");
      this.d.table.suspend(run, "stood down");
      await e.executor.suspend();
      await this.drop(run);
    }
  }

  /**
   * The lease no longer vouches for this host: every task of its runs is killed now
   * (SIGKILL to its process group, no grace: another host may take the run soon) and
   * nothing is recorded for them, as when the host stops; the runs wait for regained().
   */
  standDown(): void {
    for (const e of [...this.d.table.all()]) {
      if (e.state !== "active") continue;
      const run = e.record.ref.run;
      if (this.d.finisher.isEnding(run)) continue;
      const groups = e.executor.runningGroups();
      this.d.table.suspend(run, "stood down");
      const stopped = (async () => {
        await Promise.all(groups.map((pgid) => this.d.commands.killTaskGroup(pgid, run).catch(() => false)));
        await e.executor.suspend();
        await this.d.nodeFiles.close(run);
      })();
      this.stopping.set(run, stopped);
      this.d.log.warn({ run, tasks: groups.length }, "run stood down: its tasks were killed");
    }
  }

  /** The lease vouches again after a stand-down (or had expired): see the header. */
  async regained(outcome: Renewal): Promise<void> {
    const runs = [...this.stopping];
    this.stopping.clear();
    for (const [run, stopped] of runs) {
      await stopped;
      const e = this.d.table.get(run);
      if (e?.state !== "suspended" || e.why !== "stood down" || this.d.finisher.isEnding(run)) continue;
      if (!(await this.d.finisher.persist("check the run's lease", () => this.d.state.isCurrent(run, e.token)))) {
        this.d.log.warn({ run }, "run taken over by another host while this one stood down; dropping its copy");
        await this.drop(run);
        continue;
      }
      if (e.record.flow.onHostLoss === "fail") {
        await this.d.finisher.finish(run, "lost", "this host lost touch with the cluster state while the run was active and stopped its tasks (on-host-loss: fail)");
        continue;
      }
      this.d.log.info({ run }, "resuming run after a stand-down");
      this.d.executors.resume(run, await readStatuses(this.d.files, "active", e.record), "restarted after this host lost touch with the cluster state", await readLogCounts(this.d.files, "active", e.record));
    }
    // Whatever the renewal said: a renewal whose reply was lost during the stand-down may
    // have been the one that found the lease lapsed (and a reap may have taken runs), so
    // every run here is checked against the cluster, not only after an "expired".
    void outcome;
    await this.fence();
    this.d.resumed();
  }

  /** Another host has the run now: this host's copy goes, files and all. */
  private async drop(run: string): Promise<void> {
    const e = this.d.table.get(run);
    if (e === undefined) return;
    await this.d.nodeFiles.close(run);
    // The other host's attempt is the run now; this copy would only be resumed wrongly.
    await this.d.files.remove("active", e.record.ref).catch(() => undefined);
    if (this.d.table.get(run) === e) this.d.table.forget(run);
  }
}
