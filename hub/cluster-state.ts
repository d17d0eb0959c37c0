/**
 * The state every host of a cluster shares: live hosts, the pending list, held resources
 * and active counts. The dispatcher reads a snapshot, decides (dispatch.ts) and commits the
 * decision only if nothing changed meanwhile (compare-and-set on `version`), so two
 * dispatchers can never hand out the same pend or the same resource. Embedded hosts use
 * the in-process implementation below; clusters use Redis.
 */
import type { PendView } from "./dispatch.js";

export interface HostRecord {
  readonly name: string;
  readonly tags: readonly string[];
  readonly slots: number;
  readonly running: number;
  readonly address?: string;
  readonly lastSeen: number;
  readonly startedAt: number;
}

export interface PendRecord extends PendView {
  readonly adoptedBy: string;
  readonly adoptedAt: number;
}

export interface Assignment {
  readonly run: string;
  readonly host: string;
  readonly flowKey: string;
  readonly resources: readonly string[];
}

export interface Snapshot {
  readonly version: number;
  readonly pends: readonly PendRecord[];
  readonly hosts: readonly HostRecord[];
  readonly held: ReadonlyMap<string, string>;
  readonly activeByFlow: ReadonlyMap<string, number>;
  readonly runningByHost: ReadonlyMap<string, number>;
}

export interface ClusterState {
  upsertHost(h: HostRecord): Promise<void>;
  removeHost(name: string): Promise<void>;
  addPend(p: PendRecord): Promise<void>;
  /** True when it was there. */
  removePend(run: string): Promise<boolean>;
  snapshot(): Promise<Snapshot>;
  /** Applies the assignments only if the state is still at `version`. */
  commit(version: number, assignments: readonly Assignment[]): Promise<boolean>;
  /** Takes resources and a slot for a run that is already active (restart recovery). */
  hold(a: Assignment): Promise<void>;
  /** Frees what an active run held. */
  release(run: string): Promise<void>;
  close(): Promise<void>;
}

export class LocalClusterState implements ClusterState {
  private version = 0;
  private readonly hosts = new Map<string, HostRecord>();
  private readonly pends: PendRecord[] = [];
  private readonly held = new Map<string, string>();
  private readonly active = new Map<string, Assignment>();

  async upsertHost(h: HostRecord): Promise<void> {
    this.hosts.set(h.name, h);
    this.version++;
  }

  async removeHost(name: string): Promise<void> {
    this.hosts.delete(name);
    this.version++;
  }

  async addPend(p: PendRecord): Promise<void> {
    this.pends.push(p);
    this.version++;
  }

  async removePend(run: string): Promise<boolean> {
    const i = this.pends.findIndex((p) => p.run === run);
    if (i < 0) return false;
    this.pends.splice(i, 1);
    this.version++;
    return true;
  }

  async snapshot(): Promise<Snapshot> {
    const activeByFlow = new Map<string, number>();
    const runningByHost = new Map<string, number>();
    for (const a of this.active.values()) {
      activeByFlow.set(a.flowKey, (activeByFlow.get(a.flowKey) ?? 0) + 1);
      runningByHost.set(a.host, (runningByHost.get(a.host) ?? 0) + 1);
    }
    return { version: this.version, pends: [...this.pends], hosts: [...this.hosts.values()], held: new Map(this.held), activeByFlow, runningByHost };
  }

  async commit(version: number, assignments: readonly Assignment[]): Promise<boolean> {
    if (version !== this.version) return false;
    for (const a of assignments) {
      const i = this.pends.findIndex((p) => p.run === a.run);
      if (i >= 0) this.pends.splice(i, 1);
      this.take(a);
    }
    this.version++;
    return true;
  }

  async hold(a: Assignment): Promise<void> {
    this.take(a);
    this.version++;
  }

  private take(a: Assignment): void {
    this.active.set(a.run, a);
    for (const r of a.resources) this.held.set(r, a.run);
  }

  async release(run: string): Promise<void> {
    const a = this.active.get(run);
    if (a === undefined) return;
    this.active.delete(run);
    for (const r of a.resources) if (this.held.get(r) === run) this.held.delete(r);
    this.version++;
  }

  async close(): Promise<void> {}
}
