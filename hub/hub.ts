/**
 * The hub of one host: adopts triggers into runs (durably, before anyone is told), keeps
 * the pending list, dispatches, activates runs, and archives them when they end. It talks
 * to the cluster through ClusterState and publishes run events on a Bus, so the same code
 * serves an embedded host and a cluster member.
 */
import { mkdirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { TaskRunner } from "../agent/contract.js";
import { killOrphanGroup } from "../agent/orphans.js";
import { expandPath } from "../flows/expand.js";
import { resolveFlow } from "../flows/flow-file.js";
import { readForm } from "../flows/forms.js";
import type { Config, Flow, TriggerNode } from "../flows/model.js";
import { flowToYaml } from "../flows/serialize.js";
import type { AppendLog } from "../store/append-log.js";
import { ensureDir } from "../store/atomic-file.js";
import type { Bus } from "../store/bus.js";
import { RunFiles, type RunDirState } from "../store/run-files.js";
import { whenRoom } from "../store/when-room.js";
import { BatchRemover } from "./batch-remover.js";
import type { ClusterState, HostRecord, PendRecord } from "./cluster-state.js";
import type { ClusterLink } from "./cluster-link.js";
import { checkValues, missingFields, withDefaults } from "./data-input.js";
import { decide } from "./dispatch.js";
import { coerceError, FloeError } from "./errors.js";
import { DEFAULT_LEASE_MS, Lease, type Renewal } from "./lease.js";
import { NodeRuntime } from "./node-runtime.js";
import { makeRef, parseRunRecord, parseStatusLine, type RunRecord, type StatusLine } from "./run-record.js";
import { RunExecutor } from "./run-executor.js";
import { runIdFactory } from "./run-ids.js";
import { RunIndex, summarize, type RunEntry, type RunQuery, type RunTally } from "./run-index.js";
import { FolderSpreader } from "./spread-folders.js";
import type { HostName, LogLine, NodeStatus, RunDetail, RunEvent, RunResult, RunSummary } from "./types.js";

export interface HubOptions {
  readonly config: Config;
  /** Folder of the config file: relative flow-files are read from there. */
  readonly configDir: string;
  /** Run files live under `<root>/floes`, workspaces under `<root>/spaces`. */
  readonly root: string;
  readonly host: string;
  readonly tags: readonly string[];
  readonly slots: number;
  readonly log: Logger;
  readonly runTask: TaskRunner;
  readonly bus: Bus<RunEvent>;
  readonly state: ClusterState;
  /** Task output in the console form `<time> [flow.node] text`. */
  readonly console?: (line: string) => void;
  readonly killGraceMs?: number;
  /**
   * Cluster mode: runs are indexed in the shared state, lost hosts are reaped, and this
   * host checks its leases. Embedded hosts leave it off.
   */
  readonly clustered?: boolean;
  /** How long a host's lease lasts without a heartbeat. @defaultValue DEFAULT_LEASE_MS */
  readonly leaseMs?: number;
  /** Cluster mode: logs and requests of other hosts' runs. */
  readonly link?: ClusterLink;
}

export interface TriggerRequest {
  readonly flow: string;
  readonly ver?: number;
  /** Trigger id; defaults to the flow's first data trigger (or first trigger). */
  readonly trigger?: string;
  readonly values?: unknown;
  /** Extra opts from the trigger source (webhook url/branch/hash, timer tick…). */
  readonly opts?: Readonly<Record<string, unknown>>;
  /** Allow any trigger type and missing form values (used by `floe run` to start any flow). */
  readonly anyTrigger?: boolean;
  /** Who asked (a user name, "timer", "webhook"…), recorded on the run. */
  readonly by?: string;
  /** Only a data trigger may be named (people starting runs through the API). */
  readonly dataOnly?: boolean;
}

export type HubState = "new" | "starting" | "running" | "stopping" | "stopped";

/** Trigger opts that never reach a task: secrets and form definitions. */
const PRIVATE_OPTS = new Set(["secret", "form"]);

export class Hub {
  state: HubState = "new";
  private config: Config;
  private readonly files: RunFiles;
  /** Pruned runs' directories, removed in batches off the event loop. */
  private readonly remover: BatchRemover;
  private readonly spreader: FolderSpreader;
  /** Flow versions whose run folders were spread by this process. */
  private readonly spread = new Set<string>();
  private readonly index = new RunIndex();
  private readonly ulid = runIdFactory();
  private readonly nodeFiles = new Map<string, Map<string, AppendLog>>();
  private dispatching = false;
  private dispatchAgain = false;
  private stopPromise: Promise<void> | undefined;
  private readonly endings = new Set<Promise<void>>();
  /** flow.yml written per flow version in this process, so each trigger does not rewrite it. */
  private readonly snapshots = new Map<string, string>();
  private readonly flowYaml = new WeakMap<Flow, string>();

  private roots: { workspace: string; store: string };

  constructor(private readonly o: HubOptions) {
    this.config = o.config;
    this.files = new RunFiles(o.root);
    this.remover = new BatchRemover(o.log);
    this.spreader = new FolderSpreader(o.log);
    this.roots = this.expandRoots(o.config);
    this.lease = new Lease(o.leaseMs ?? DEFAULT_LEASE_MS, {
      renew: (leaseMs, marginMs) => this.o.state.heartbeat(this.hostRecord(), leaseMs, marginMs),
      probe: () => this.o.state.ping(),
      standDown: () => this.standDown(),
      regained: (outcome) => this.regained(outcome),
      // An embedded host is the only one: no other host can take its runs.
      selfFence: o.clustered === true,
      log: o.log,
    });
  }

  /** `workspace-root` and `store-root` with `~` and `%tmp` expanded, once per config. */
  private expandRoots(c: Config): { workspace: string; store: string } {
    return {
      workspace: c.common.workspaceRoot !== undefined ? expandPath(c.common.workspaceRoot) : this.o.root,
      store: c.common.storeRoot !== undefined ? expandPath(c.common.storeRoot) : this.o.root,
    };
  }

  get host(): HostName {
    return this.o.host as HostName;
  }

  get bus(): Bus<RunEvent> {
    return this.o.bus;
  }

  get currentConfig(): Config {
    return this.config;
  }

  get spacesRoot(): string {
    return join(this.roots.workspace, "spaces");
  }

  get cacheDir(): string {
    return join(this.roots.store, "fetch_cache");
  }

  async start(): Promise<void> {
    this.state = "starting";
    await mkdir(join(this.o.root, "floes"), { recursive: true });
    await this.lease.begin();
    await this.recover();
    if (this.o.clustered) this.joinCluster();
    this.state = "running";
    if (this.o.clustered) this.scheduleSync();
    this.kick();
  }

  /** A new config (SIGHUP): new runs use it; running runs keep the flow they started with. */
  reload(config: Config): void {
    if (config.common.workspaceRoot !== this.config.common.workspaceRoot || config.common.storeRoot !== this.config.common.storeRoot) this.roots = this.expandRoots(config);
    this.config = config;
    this.kick();
  }

  private readonly startedAt = Date.now();
  private syncTimer: NodeJS.Timeout | undefined;
  private readonly lease: Lease;
  private address: string | undefined;

  /** Where this host's API listens, shown to the cluster from the next heartbeat on. */
  advertise(url: string): void {
    this.address = url;
  }

  private hostRecord(): HostRecord {
    const running = this.index.count((e) => e.state === "active" && e.executor !== undefined);
    return { name: this.o.host, tags: this.o.tags, slots: this.o.slots, running, lastSeen: Date.now(), startedAt: this.startedAt, ...(this.address !== undefined ? { address: this.address } : {}) };
  }

  /** When a cluster sync last failed (the host's start counts). */
  private syncTroubleAt = Date.now();

  /**
   * Whether a task of this run may start here now (cluster): only while this host's lease
   * vouches for it (lease.ts). A host that was stopped or cut off past that point waits for
   * a renewal that vouches again, then checks that the run is still its own (its fencing
   * token); while the state can not be reached the task waits (work pauses rather than
   * fails). False: the run is no longer this host's (it is fenced here).
   */
  private async mayStartTask(e: RunEntry, signal: AbortSignal): Promise<boolean> {
    const token = e.token;
    if (!this.o.clustered || token === undefined || this.lease.vouched) return true;
    for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
      if (!(await this.lease.whenVouched(signal))) return false;
      try {
        const current = await this.o.state.isCurrent(e.record.ref.run, token);
        if (!current) {
          this.o.log.warn({ run: e.record.ref.run }, "a task was not started: the run was taken over while this host was away");
          // Not awaited: fencing waits for the tasks of the runs it stops, this one included.
          void this.fence().catch((err: unknown) => this.o.log.error({ err: coerceError(err) }, "fencing failed"));
          return false;
        }
        if (this.lease.vouched) return true;
      } catch {
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Runs stood down by standDown, until the lease vouches again; their stopping tasks. */
  private readonly stoodDown = new Map<string, Promise<void>>();

  /**
   * The lease no longer vouches for this host (lease.ts): every task of its runs is killed
   * now (SIGKILL to its process group, no grace: another host may take the run soon) and
   * nothing is recorded for them, as when the host stops; the runs wait here for regained.
   */
  private standDown(): void {
    for (const e of this.index.all()) {
      if (e.state !== "active" || e.executor === undefined) continue;
      const run = e.record.ref.run;
      const ex = e.executor;
      delete e.executor;
      const groups = ex.runningGroups();
      const stopped = (async () => {
        await Promise.all(groups.map((pgid) => killOrphanGroup(pgid, run).catch(() => false)));
        await ex.suspend();
        await this.closeNodeFiles(run);
      })();
      this.stoodDown.set(run, stopped);
      this.o.log.warn({ run, tasks: groups.length }, "run stood down: its tasks were killed");
    }
  }

  /**
   * The lease vouches again after a stand-down (or had expired): runs taken over meanwhile
   * are dropped here; the others resume from their files as after a restart (interrupted
   * tasks run again), or end lost when their flow says on-host-loss: fail.
   */
  private async regained(outcome: Renewal): Promise<void> {
    const runs = [...this.stoodDown];
    this.stoodDown.clear();
    for (const [run, stopped] of runs) {
      await stopped;
      const e = this.index.get(run);
      if (e === undefined || e.state !== "active" || e.token === undefined) continue;
      if (!(await this.persist("check the run's lease", () => this.o.state.isCurrent(run, e.token as number)))) {
        this.o.log.warn({ run }, "run taken over by another host while this one stood down; dropping its copy");
        await this.files.remove("active", e.record.ref).catch(() => undefined);
        this.index.delete(run);
        continue;
      }
      if (e.record.flow.onHostLoss === "fail") {
        await this.finish(e, "lost", "this host lost touch with the cluster state while the run was active and stopped its tasks (on-host-loss: fail)");
        continue;
      }
      const statuses = new Map<string, StatusLine[]>();
      for (const n of [...e.record.flow.triggers, ...e.record.flow.tasks]) statuses.set(n.id, await this.readStatus("active", e.record, n.id));
      this.o.log.info({ run }, "resuming run after a stand-down");
      const ex = this.executorFor(e);
      this.publishRun(e);
      ex.resume(statuses, "restarted after this host lost touch with the cluster state");
    }
    if (outcome === "expired") await this.fence();
    this.kick();
  }

  private scheduleSync(): void {
    this.syncTimer = setTimeout(() => {
      void (async () => {
        try {
          await this.flushIndexBacklog();
          // After an outage of the state (a Redis restart), every host's lease looks lapsed
          // until it renews: reap only once all live hosts have had a full lease to do so.
          const trouble = Math.max(this.syncTroubleAt, this.lease.troubleAt);
          if (this.lease.vouched && Date.now() - trouble > this.lease.ms + this.lease.marginMs + this.lease.renewEveryMs) await this.reap();
          await this.dropMovedPends();
          // Events can be missed while a broker restarts: look at the shared list anyway.
          this.kick();
        } catch (e) {
          this.syncTroubleAt = Date.now();
          this.o.log.warn({ err: coerceError(e) }, "cluster sync failed; retrying");
        }
        if (this.state === "running") this.scheduleSync();
      })();
    }, this.lease.renewEveryMs);
    this.syncTimer.unref();
  }

  /**
   * After a lapsed lease: any run whose fencing token is no longer current was given to
   * another host. Its tasks are killed here and nothing more is written for it.
   */
  private async fence(): Promise<void> {
    for (const e of [...this.index.all()]) {
      if (e.state !== "active" || e.executor === undefined || e.token === undefined) continue;
      if (await this.o.state.isCurrent(e.record.ref.run, e.token)) continue;
      this.o.log.warn({ run: e.record.ref.run }, "run taken over by another host; stopping it here");
      const ex = e.executor;
      delete e.executor;
      e.fenced = true;
      await ex.suspend();
      await this.closeNodeFiles(e.record.ref.run);
      // The other host's attempt is the run now; this copy would only be resumed wrongly.
      await this.files.remove("active", e.record.ref).catch(() => undefined);
      this.index.delete(e.record.ref.run);
    }
  }

  /** Answers other hosts' requests, and forgets pends of ours that another host took or ended. */
  private joinCluster(): void {
    const link = this.o.link;
    if (link !== undefined) {
      link.serve("data", async (p) => {
        const q = p as { run: string; node: string; values: unknown; reject?: string };
        return this.postData(q.run, q.node, q.values, q.reject);
      });
      link.serve("cancel", async (p) => {
        const q = p as { run: string; by: string };
        return this.cancel(q.run, q.by);
      });
    }
    this.o.bus.subscribe((ev) => {
      if (ev.type !== "run") return;
      // Another host adopted a pend or freed a slot or resource: it may be ours to take now.
      if (ev.summary.ref.execHost !== this.o.host) this.kick();
      if (ev.summary.state === "pending") return;
      const e = this.index.get(ev.summary.ref.run);
      if (e === undefined || e.state !== "pending" || ev.summary.ref.execHost === this.o.host) return;
      // Our pend was activated (or ended) elsewhere: its files here are no longer the truth.
      this.index.delete(ev.summary.ref.run);
      void this.files.remove("pending", e.record.ref).catch(() => undefined);
    });
  }

  /** Runs of hosts whose lease lapsed: requeued as a new attempt, or ended lost. */
  /** The runs of the shared pending list at the last dispatch. */
  private lastPends: ReadonlySet<string> | undefined;
  /** Local pends that were missing from it at the last heartbeat. */
  private readonly missingPends = new Set<string>();

  /**
   * A local pend activated or ended by another host is dropped when that host's event
   * arrives; events sent while NATS was away never arrive. So: a local pend missing from
   * the shared list at two heartbeats in a row, which the run index shows past pending,
   * is dropped here too (its files would otherwise say "pending" forever).
   */
  private async dropMovedPends(): Promise<void> {
    const listed = this.lastPends;
    if (listed === undefined) return;
    for (const e of [...this.index.all()]) {
      const run = e.record.ref.run;
      if (e.state !== "pending" || listed.has(run)) {
        this.missingPends.delete(run);
        continue;
      }
      if (!this.missingPends.has(run)) {
        this.missingPends.add(run);
        continue;
      }
      const sum = await this.indexedSummary(run);
      if (sum === undefined || sum.state === "pending") continue;
      this.missingPends.delete(run);
      if (this.index.get(run) !== e) continue;
      this.o.log.info({ run }, "run moved on elsewhere while events were lost; dropping the local pending copy");
      this.index.delete(run);
      await this.files.remove("pending", e.record.ref).catch(() => undefined);
    }
    for (const run of this.missingPends) if (this.index.get(run)?.state !== "pending") this.missingPends.delete(run);
  }

  private async reap(): Promise<void> {
    for (const lost of await this.o.state.reapDead()) {
      const json = await this.o.state.getRecord(lost.run);
      const record = json === undefined ? undefined : parseRunRecord(JSON.parse(json) as unknown);
      if (record === undefined) {
        this.o.log.error({ run: lost.run, host: lost.host }, "a lost run has no record; it can not be recovered");
        continue;
      }
      if (record.flow.onHostLoss === "fail") {
        const ended: RunRecord = { ...record, result: "lost", reason: `host ${lost.host} was lost while the run was active (on-host-loss: fail)`, endedAt: Date.now() };
        this.publishEvent({ v: 1, type: "run", summary: summarize({ record: ended, state: "archived" }) });
        this.o.log.warn({ run: lost.run, host: lost.host }, "run lost with its host");
        continue;
      }
      const again: RunRecord = { v: 1, ref: { flow: record.ref.flow, ver: record.ref.ver, run: record.ref.run, adoptedBy: this.host }, flow: record.flow, trigger: record.trigger, adoptedAt: record.adoptedAt, attempt: record.attempt + 1 };
      // The pend carries the new attempt's record: addPend keeps it as the run's record.
      if (!(await this.o.state.addPend(this.pendOf(again), "requeue"))) continue;
      this.o.log.warn({ run: lost.run, host: lost.host, attempt: again.attempt }, "run requeued after its host was lost");
      const entry: RunEntry = { record: again, state: "pending" };
      this.publishRun(entry);
      this.kick();
    }
  }

  // --- adopting ----------------------------------------------------------------------

  findFlow(id: string, ver?: number): Flow {
    const candidates = this.config.flows.filter((f) => f.id === id && (ver === undefined || f.ver === ver));
    const flow = candidates.reduce<Flow | undefined>((best, f) => (best === undefined || f.ver > best.ver ? f : best), undefined);
    if (flow === undefined) throw new FloeError("E_FLOW_NOT_FOUND", ver === undefined ? `no flow "${id}"` : `no flow "${id}" version ${ver}`);
    return flow;
  }

  /** Adopts a trigger into a run: the pend is on disk before this returns. */
  async trigger(req: TriggerRequest): Promise<RunSummary> {
    if (this.state !== "running") throw new FloeError("E_STOPPING", "this host is not taking new runs (it is stopping)");
    const base = this.findFlow(req.flow, req.ver);
    const trig = this.pickTrigger(base, req);
    const form = trig === undefined ? undefined : readForm(trig.opts).form;
    const given = checkValues(form, req.values);
    const values = withDefaults(form, given);
    if (form !== undefined && !req.anyTrigger) {
      const missing = missingFields(form, values);
      if (missing.length > 0) throw new FloeError("E_FORM_INVALID", `missing values for ${missing.join(", ")}`, { details: { missing } });
    }
    let flow: Flow;
    try {
      flow = await resolveFlow(base, { baseDir: this.o.configDir, ...(this.config.common.gitKey ? { gitKey: this.config.common.gitKey } : {}) });
    } catch (e) {
      throw new FloeError("E_FLOW_FILE", coerceError(e).message, { cause: e });
    }
    await this.applyQueueLimit(flow);
    const triggerOpts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(trig?.opts ?? {})) if (!PRIVATE_OPTS.has(k)) triggerOpts[k] = v;
    const run = this.ulid();
    const record: RunRecord = {
      v: 1,
      ref: makeRef(flow.id, flow.ver, run, this.o.host),
      flow,
      trigger: { id: trig?.id ?? "manual", type: trig?.type ?? "manual", values: { ...triggerOpts, ...(req.opts ?? {}), ...values }, ...(req.by !== undefined ? { by: req.by } : {}) },
      adoptedAt: Date.now(),
      attempt: 1,
    };
    // A flow of the config is the same object run after run: its YAML is made once.
    let yaml = this.flowYaml.get(flow);
    if (yaml === undefined) this.flowYaml.set(flow, (yaml = flowToYaml(flow)));
    await this.snapshotFlow(flow, yaml);
    await this.files.writeRunJson("pending", record.ref, record);
    try {
      // One step: the pend, with the record another host needs to activate or requeue it.
      await this.o.state.addPend(this.pendOf(record));
    } catch (e) {
      // The cluster never heard of it: no run, and the caller is told to try again.
      await this.files.remove("pending", record.ref).catch(() => undefined);
      throw new FloeError("E_UNAVAILABLE", `the cluster state can not be reached; the run was not started: ${coerceError(e).message}`, { cause: e });
    }
    const entry: RunEntry = { record, state: "pending" };
    this.index.set(entry);
    this.publishRun(entry);
    this.o.log.info({ run, flow: flow.id, ver: flow.ver, trigger: record.trigger.id }, "run adopted");
    this.kick();
    return summarize(entry);
  }

  private pickTrigger(flow: Flow, req: TriggerRequest): TriggerNode | undefined {
    if (req.trigger !== undefined) {
      const t = flow.triggers.find((x) => x.id === req.trigger);
      if (t === undefined) throw new FloeError("E_TRIGGER_NOT_FOUND", `flow "${flow.id}" has no trigger "${req.trigger}" (triggers: ${flow.triggers.map((x) => x.id).join(", ") || "none"})`);
      if (req.dataOnly && t.type !== "data") throw new FloeError("E_TRIGGER_NOT_FOUND", `trigger "${t.id}" of flow "${flow.id}" is a ${t.type} trigger; only data triggers start runs from a form`);
      return t;
    }
    const data = flow.triggers.find((x) => x.type === "data");
    if (data !== undefined) return data;
    if (req.anyTrigger) return flow.triggers[0];
    throw new FloeError("E_TRIGGER_NOT_FOUND", `flow "${flow.id}" has no data trigger to start it with`);
  }

  private async applyQueueLimit(flow: Flow): Promise<void> {
    if (flow.queueLimit === undefined) return;
    const pending = [...this.index.all()].filter((e) => e.state === "pending" && e.record.ref.flow === flow.id && e.record.ref.ver === flow.ver);
    if (pending.length < flow.queueLimit) return;
    if (flow.queueStrategy === "append" || pending.length === 0) {
      throw new FloeError("E_QUEUE_FULL", `flow "${flow.id}" already has ${pending.length} pending run(s), its queue-limit`);
    }
    pending.sort((a, b) => (a.record.ref.run < b.record.ref.run ? -1 : 1));
    for (const old of pending.slice(0, pending.length - flow.queueLimit + 1)) {
      await this.endPending(old, "cancelled", "replaced by a newer trigger (queue-strategy: replace)");
    }
  }

  private pendOf(r: RunRecord): PendRecord {
    const resources = [...r.flow.resourceTags, ...(r.flow.reuseSpace ? [`reuse-space:${r.flow.id}`] : [])];
    return {
      run: r.ref.run,
      flowKey: `${r.flow.id}/${r.flow.ver}`,
      hostTags: r.flow.hostTags,
      resources,
      ...(r.flow.concurrency !== undefined ? { concurrency: r.flow.concurrency } : {}),
      adoptedBy: r.ref.adoptedBy,
      adoptedAt: r.adoptedAt,
      // Another host activating this pend needs its record; an embedded host only claims its
      // own pends, whose records it holds, so it keeps no second copy (≈ 2 KB a pend).
      record: this.o.clustered ? JSON.stringify(r) : "",
    };
  }

  // --- dispatching -------------------------------------------------------------------

  /** Runs the dispatcher soon; calls made while it runs coalesce into one more pass. */
  kick(): void {
    if (this.state !== "running" && this.state !== "starting") return;
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = true;
    setImmediate(() => {
      void this.dispatchLoop();
    });
  }

  private async dispatchLoop(): Promise<void> {
    try {
      do {
        this.dispatchAgain = false;
        await this.dispatchOnce();
      } while (this.dispatchAgain && this.state === "running");
    } catch (e) {
      this.o.log.error({ err: coerceError(e) }, "dispatch failed; retrying");
      setTimeout(() => this.kick(), 1000).unref();
    } finally {
      this.dispatching = false;
    }
  }

  private async dispatchOnce(): Promise<void> {
    const snap = await this.o.state.snapshot();
    this.lastPends = new Set(snap.pends.map((p) => p.run));
    const hosts = snap.hosts.map((h) => ({ name: h.name, tags: h.tags, freeSlots: h.slots - (snap.runningByHost.get(h.name) ?? 0) }));
    const d = decide({ pends: snap.pends, hosts, held: snap.held, activeByFlow: snap.activeByFlow, forHost: this.o.host });
    for (const [run, why] of d.waiting) {
      const e = this.index.get(run);
      if (e !== undefined && e.state === "pending" && e.waiting !== why) {
        e.waiting = why;
        this.publishRun(e);
      }
    }
    if (d.assign.length === 0) return;
    // A host its lease does not vouch for takes no run (it would start its tasks unvouched).
    if (this.o.clustered && !this.lease.vouched) return;
    const byRun = new Map(snap.pends.map((p) => [p.run, p]));
    const assignments = d.assign.map((a) => {
      const p = byRun.get(a.run) as PendRecord;
      return { run: a.run, host: a.host, flowKey: p.flowKey, resources: p.resources, ...(p.concurrency !== undefined ? { concurrency: p.concurrency } : {}) };
    });
    const claimed = await this.o.state.claim(assignments);
    // Each activation waits on its own syncs; runs claimed together need not wait on each other's.
    await Promise.all(claimed.map((c) => this.activate(c.run, c.token, c.record)));
    // Some were taken by another host meanwhile, or their resources went: decide again.
    if (claimed.length < assignments.length) this.dispatchAgain = true;
  }

  private async activate(run: string, token: number, recordJson: string): Promise<void> {
    let e = this.index.get(run);
    const local = e !== undefined && e.state === "pending";
    if (e === undefined || !local) {
      // Adopted by another host (cluster): the claim carries its record.
      const rec = recordJson === "" ? undefined : parseRunRecord(JSON.parse(recordJson) as unknown);
      if (rec === undefined) {
        this.o.log.error({ run }, "a claimed pend has no valid record; releasing it");
        await this.o.state.release(run, token);
        return;
      }
      e = { record: rec, state: "pending" };
      this.index.set(e);
    }
    e.token = token;
    const record: RunRecord = { ...e.record, ref: { ...e.record.ref, execHost: this.host }, startedAt: Date.now() };
    try {
      if (!local) await this.snapshotFlow(record.flow, flowToYaml(record.flow));
      await this.files.openActive(record.ref, record, this.nodeFilesOf(record), () => this.prepareWorkspace(record), local);
    } catch (err) {
      this.o.log.error({ err: coerceError(err), run }, "activation failed");
      e.record = record;
      e.state = "active";
      await this.finish(e, "bad", `could not activate: ${coerceError(err).message}`);
      return;
    }
    e.record = record;
    e.state = "active";
    delete e.waiting;
    this.o.log.info({ run, flow: record.ref.flow }, "run activated");
    const ex = this.executorFor(e);
    this.publishRun(e);
    ex.start();
  }

  /**
   * Writes a flow version's `flow.yml` (and makes its run folders) unless this process wrote
   * the same text there already: every run of the version, adopted here or by another host,
   * would otherwise replace it (two syncs and a new file each).
   */
  private async snapshotFlow(flow: Flow, yaml: string): Promise<void> {
    const key = `${flow.id}/${flow.ver}`;
    if (this.snapshots.get(key) === yaml) return;
    await this.files.writeFlowSnapshot(flow.id, flow.ver, yaml);
    await this.spreadRunFolders(flow.id, flow.ver);
    this.snapshots.set(key, yaml);
  }

  /**
   * Makes the folders a flow version's runs are made in (durably: a run is moved into
   * `active/`) and has them spread over the disk (spread-folders.ts), once per process.
   */
  private async spreadRunFolders(flow: string, ver: number): Promise<void> {
    const key = `${flow}/${ver}`;
    if (this.spread.has(key)) return;
    this.spread.add(key);
    const runs = [this.files.stateDir("pending", flow, ver), this.files.stateDir("active", flow, ver)];
    await Promise.all(runs.map((d) => ensureDir(d)));
    const spaces = join(this.spacesRoot, flow);
    mkdirSync(spaces, { recursive: true, mode: 0o700 });
    this.spreader.spread([...runs, spaces]);
  }

  workspaceOf(r: RunRecord): string {
    return join(this.spacesRoot, r.ref.flow, r.flow.reuseSpace ? "single" : r.ref.run);
  }

  workspaceForRun(run: string): string {
    return this.workspaceOf(this.entry(run).record);
  }

  private async prepareWorkspace(r: RunRecord): Promise<void> {
    // reuse-space keeps its content between runs (floe wiped it, §9.18); a fresh run starts empty.
    mkdirSync(this.workspaceOf(r), { recursive: true, mode: 0o700 });
  }

  private executorFor(e: RunEntry): RunExecutor {
    const r = e.record;
    const ex = new RunExecutor(r, {
      runTask: this.o.runTask,
      mayStartTask: (signal) => this.mayStartTask(e, signal),
      log: this.o.log.child({ run: r.ref.run, flow: r.ref.flow }),
      openNodeFile: (node, kind) => this.nodeFile(r, node, kind),
      publish: (ev) => this.publishEvent(ev),
      onEnd: (result, reason) => {
        const p = this.finish(e, result, reason).catch((err: unknown) => this.o.log.error({ err: coerceError(err), run: r.ref.run }, "archiving failed"));
        this.endings.add(p);
        void p.finally(() => this.endings.delete(p));
      },
      workspace: this.workspaceOf(r),
      cacheDir: this.cacheDir,
      ...(this.config.common.gitKey !== undefined ? { gitKey: this.config.common.gitKey } : {}),
      ...(this.o.killGraceMs !== undefined ? { killGraceMs: this.o.killGraceMs } : {}),
    });
    e.executor = ex;
    return ex;
  }

  /**
   * Every node's status file and every task's log file, made together at activation so
   * that one folder sync covers them all, not one per node as the run reaches it (a node
   * never reached keeps an empty file).
   */
  private nodeFilesOf(r: RunRecord): AppendLog[] {
    const files: AppendLog[] = [];
    for (const n of [...r.flow.triggers, ...r.flow.tasks]) {
      files.push(this.nodeFile(r, n.id, "status"));
      if (n.class === "task" && n.type !== "end") files.push(this.nodeFile(r, n.id, "log"));
    }
    return files;
  }

  private nodeFile(r: RunRecord, node: string, kind: "status" | "log"): AppendLog {
    let m = this.nodeFiles.get(r.ref.run);
    if (m === undefined) {
      m = new Map();
      this.nodeFiles.set(r.ref.run, m);
    }
    const key = `${kind}:${node}`;
    let f = m.get(key);
    if (f === undefined) {
      f = this.files.openLog(kind === "status" ? this.files.nodeStatusPath("active", r.ref, node) : this.files.nodeLogPath("active", r.ref, node));
      m.set(key, f);
    }
    return f;
  }

  private async closeNodeFiles(run: string): Promise<void> {
    const m = this.nodeFiles.get(run);
    if (m === undefined) return;
    this.nodeFiles.delete(run);
    await Promise.allSettled([...m.values()].map((f) => f.close()));
  }

  // --- ending --------------------------------------------------------------------------

  /** Records the result, moves the run to archive, frees what it held. */
  private async finish(e: RunEntry, result: RunResult, reason: string): Promise<void> {
    const token = e.token;
    if (this.o.clustered && token !== undefined && !(await this.persist("check the run's lease", () => this.o.state.isCurrent(e.record.ref.run, token)))) {
      // Its lease lapsed and the cluster gave the run to another host: nothing more from here.
      this.o.log.warn({ run: e.record.ref.run }, "run ended here after the cluster took it over; its end is not recorded");
      await this.closeNodeFiles(e.record.ref.run);
      await this.files.remove("active", e.record.ref).catch(() => undefined);
      this.index.delete(e.record.ref.run);
      return;
    }
    const record: RunRecord = { ...e.record, result, reason, endedAt: Date.now() };
    e.record = record;
    await this.closeNodeFiles(record.ref.run);
    const from: RunDirState = e.state === "pending" ? "pending" : "active";
    // A full disk pauses the end (the run stays active, its locks held) until there is room.
    await whenRoom(
      async () => {
        await this.files.writeRunJson(from, record.ref, record);
        await this.files.move(from, "archive", record.ref);
      },
      (err) => this.o.log.error({ err: coerceError(err), run: record.ref.run }, "the disk is full: the run's end waits for room"),
      () => this.state === "stopped",
    );
    e.state = "archived";
    delete e.executor;
    delete e.waiting;
    if (token !== undefined) await this.persist("release the run's resources", () => this.o.state.release(record.ref.run, token));
    this.o.log.info({ run: record.ref.run, flow: record.ref.flow, result, reason }, "run ended");
    this.publishRun(e);
    this.kick();
    await this.prune(record.flow.id, record.flow.ver);
  }

  /**
   * A cluster-state call that must happen (a run's end): retried while the broker is away,
   * so work pauses rather than fails. Embedded state never fails, so it runs once.
   */
  private async persist<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let delay = 200, warned = false; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await fn();
      } catch (e) {
        if (!this.o.clustered) throw e;
        if (!warned) this.o.log.warn({ err: coerceError(e) }, `could not ${what}; retrying until the cluster state is back`);
        warned = true;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async endPending(e: RunEntry, result: RunResult, reason: string): Promise<void> {
    await this.o.state.removePend(e.record.ref.run);
    await this.finish(e, result, reason);
  }

  /** Keeps at most `retention.runs` archived runs per flow version, none older than max-age. */
  private async prune(flow: string, ver: number): Promise<void> {
    const { runs, maxAgeMs } = this.config.common.retention;
    const archived = [...this.index.all()].filter((x) => x.state === "archived" && x.record.ref.flow === flow && x.record.ref.ver === ver).sort((a, b) => (a.record.ref.run < b.record.ref.run ? 1 : -1));
    const cutoff = Date.now() - maxAgeMs;
    for (const [i, x] of archived.entries()) {
      if (i < runs && (x.record.endedAt ?? x.record.adoptedAt) >= cutoff) continue;
      this.index.delete(x.record.ref.run);
      this.remover.add(this.files.runDir("archive", x.record.ref));
      if (!x.record.flow.reuseSpace) this.remover.add(this.workspaceOf(x.record));
    }
  }

  // --- the in-process API -------------------------------------------------------------

  /** Hosts of the cluster as the shared state sees them. */
  async hosts(): Promise<{ name: string; tags: readonly string[]; slots: number; running: number; up: boolean; lastSeen: number }[]> {
    const snap = await this.o.state.snapshot();
    return (await this.o.state.hosts()).map(({ host: h, up }) => ({ name: h.name, tags: h.tags, slots: h.slots, running: snap.runningByHost.get(h.name) ?? 0, up, lastSeen: h.lastSeen, ...(h.address ? { address: h.address } : {}) })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Runs this host knows (its own; in a cluster, queryRuns sees every host's). */
  listRuns(q: RunQuery): RunSummary[] {
    return this.index.query(q);
  }

  /** How many runs this host knows in each state (metrics): counted, not listed. */
  tallyRuns(): RunTally {
    return this.index.tally();
  }

  /** How many runs of a flow are pending, active and archived (in a cluster: on every host). */
  async countRuns(flow: string): Promise<Record<"pending" | "active" | "archived", number>> {
    if (this.o.clustered) return this.o.state.countRuns(flow);
    const out = { pending: 0, active: 0, archived: 0 };
    for (const e of this.index.all()) if (e.record.ref.flow === flow) out[e.state]++;
    return out;
  }

  /** Runs across the cluster, newest first. */
  async queryRuns(q: RunQuery): Promise<RunSummary[]> {
    if (!this.o.clustered) return this.index.query(q);
    const json = await this.o.state.listRuns({ limit: q.limit ?? 50, ...(q.flow !== undefined ? { flow: q.flow } : {}), ...(q.state !== undefined ? { state: q.state } : {}), ...(q.before !== undefined ? { before: q.before } : {}) });
    return json.map((j) => JSON.parse(j) as RunSummary);
  }

  /** A run as the cluster's run index has it (any host's), without its nodes. */
  private async indexedSummary(run: string): Promise<RunSummary | undefined> {
    const got = await this.o.state.getRun(run);
    return got === undefined ? undefined : (JSON.parse(got.json) as RunSummary);
  }

  /** The host executing a run elsewhere in the cluster, if it is not this one. */
  private async remoteHost(run: string): Promise<string | undefined> {
    if (!this.o.clustered || this.o.link === undefined) return undefined;
    const sum = await this.indexedSummary(run);
    if (sum === undefined) return undefined;
    return sum.state === "active" && sum.ref.execHost !== undefined && sum.ref.execHost !== this.o.host ? sum.ref.execHost : undefined;
  }

  /** Input for a data node of a run on any host of the cluster. */
  async submitData(run: string, node: string, values: unknown, reject?: string): Promise<NodeStatus> {
    if (this.index.get(run)?.executor === undefined) {
      const host = await this.remoteHost(run);
      if (host !== undefined && this.o.link !== undefined) return (await this.o.link.ask(host, "data", { run, node, values, ...(reject !== undefined ? { reject } : {}) })) as NodeStatus;
      if (this.index.get(run) === undefined && this.o.clustered) {
        // Another host's run that is not active: say why, as its own host would.
        const sum = await this.indexedSummary(run);
        if (sum?.state === "archived") throw new FloeError("E_RUN_ENDED", `run "${run}" has ended`);
        if (sum !== undefined) throw new FloeError("E_DATA_NOT_ENABLED", `run "${run}" is ${sum.state}; its data nodes are not open yet`);
      }
    }
    return this.postData(run, node, values, reject);
  }

  private entry(run: string): RunEntry {
    const e = this.index.get(run);
    if (e === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
    return e;
  }

  async getRun(run: string): Promise<RunDetail> {
    const local = this.index.get(run);
    if (local === undefined && this.o.clustered) {
      const got = await this.o.state.getRun(run);
      if (got === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
      const sum = JSON.parse(got.json) as RunSummary & { name?: string };
      const nodes = Object.values(got.nodes).map((j) => JSON.parse(j) as NodeStatus);
      return { ...sum, name: sum.name ?? sum.ref.flow, nodes };
    }
    const e = this.entry(run);
    let nodes: NodeStatus[];
    if (e.executor !== undefined) nodes = e.executor.statuses();
    else nodes = await this.nodesFromFiles(e);
    return { ...summarize(e), name: e.record.flow.name, nodes };
  }

  private async nodesFromFiles(e: RunEntry): Promise<NodeStatus[]> {
    const state: RunDirState = e.state === "pending" ? "pending" : e.state === "active" ? "active" : "archive";
    const flow = e.record.flow;
    const out: NodeStatus[] = [];
    for (const n of [...flow.triggers, ...flow.tasks]) {
      const rt = new NodeRuntime(n);
      if (e.state !== "pending") {
        rt.restore(await this.readStatus(state, e.record, n.id));
        rt.logLines = (await this.files.readLines(this.files.nodeLogPath(state, e.record.ref, n.id))).length;
        if (e.state === "archived") rt.skipIfUnreached();
      }
      out.push(rt.status());
    }
    return out;
  }

  private async readStatus(state: RunDirState, r: RunRecord, node: string): Promise<StatusLine[]> {
    const lines = await this.files.readLines(this.files.nodeStatusPath(state, r.ref, node));
    return lines.map(parseStatusLine).filter((l): l is StatusLine => l !== undefined);
  }

  /** Output lines of a node after `after`, at most `limit`. */
  async readLog(run: string, node: string, after = 0, limit = 1000): Promise<{ lines: LogLine[]; state: RunEntry["state"] }> {
    const local = this.index.get(run);
    if (local === undefined && this.o.clustered && this.o.link !== undefined) {
      const sum = await this.indexedSummary(run);
      if (sum === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
      return { lines: await this.o.link.logs(run, node, after, limit), state: sum.state };
    }
    const e = this.entry(run);
    if (![...e.record.flow.triggers, ...e.record.flow.tasks].some((n) => n.id === node)) throw new FloeError("E_NODE_NOT_FOUND", `run "${run}" has no node "${node}"`);
    if (e.state === "pending") return { lines: [], state: e.state };
    const open = this.nodeFiles.get(run)?.get(`log:${node}`);
    if (open !== undefined) await open.flush();
    const state: RunDirState = e.state === "active" ? "active" : "archive";
    const all = (await this.files.readLines(this.files.nodeLogPath(state, e.record.ref, node))) as LogLine[];
    return { lines: all.filter((l) => l.seq > after).slice(0, limit), state: e.state };
  }

  postData(run: string, node: string, values: unknown, reject?: string): NodeStatus {
    const e = this.entry(run);
    this.refuseIfStoodDown(run);
    if (e.executor === undefined) {
      if (e.state === "archived") throw new FloeError("E_RUN_ENDED", `run "${run}" has ended`);
      throw new FloeError("E_DATA_NOT_ENABLED", `run "${run}" is ${e.state}; its data nodes are not open yet`);
    }
    return e.executor.postData(node, values, reject);
  }

  async cancel(run: string, by: string): Promise<RunSummary> {
    if (this.index.get(run)?.executor === undefined && this.o.clustered) {
      const host = await this.remoteHost(run);
      if (host !== undefined && this.o.link !== undefined) return (await this.o.link.ask(host, "cancel", { run, by })) as RunSummary;
      if (this.index.get(run) === undefined) return this.cancelRemotePend(run, by);
    }
    const e = this.entry(run);
    this.refuseIfStoodDown(run);
    const reason = `cancelled by ${by}`;
    if (e.state === "archived") throw new FloeError("E_RUN_ENDED", `run "${run}" has already ended (${e.record.result ?? "?"})`);
    if (e.state === "pending") await this.endPending(e, "cancelled", reason);
    else if (e.executor !== undefined) {
      await e.executor.cancel(reason);
      await Promise.allSettled([...this.endings]);
    }
    return summarize(e);
  }

  private refuseIfStoodDown(run: string): void {
    if (this.stoodDown.has(run)) throw new FloeError("E_UNAVAILABLE", `run "${run}" waits on a host that lost touch with the cluster state; try again when it is back`);
  }

  /** A pend adopted by another host: whoever removes it from the shared list ends it. */
  private async cancelRemotePend(run: string, by: string): Promise<RunSummary> {
    const sum = await this.indexedSummary(run);
    if (sum === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
    if (sum.state === "archived") throw new FloeError("E_RUN_ENDED", `run "${run}" has already ended (${sum.result ?? "?"})`);
    if (!(await this.o.state.removePend(run))) {
      // Claimed by a host in the meantime: cancel it there.
      const host = await this.remoteHost(run);
      if (host !== undefined && this.o.link !== undefined) return (await this.o.link.ask(host, "cancel", { run, by })) as RunSummary;
      throw new FloeError("E_RUN_ENDED", `run "${run}" is no longer pending`);
    }
    const json = await this.o.state.getRecord(run);
    const rec = json === undefined ? undefined : parseRunRecord(JSON.parse(json) as unknown);
    if (rec === undefined) throw new FloeError("E_RUN_NOT_FOUND", `run "${run}" has no record`);
    const ended: RunRecord = { ...rec, result: "cancelled", reason: `cancelled by ${by}`, endedAt: Date.now() };
    const summary = summarize({ record: ended, state: "archived" });
    this.publishEvent({ v: 1, type: "run", summary });
    return summary;
  }

  /** Waits until a run is archived (tests and `floe run`). */
  waitForEnd(run: string, signal?: AbortSignal): Promise<RunSummary> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const e = this.index.get(run);
        if (e?.state === "archived") {
          off();
          resolve(summarize(e));
          return true;
        }
        return false;
      };
      const off = this.o.bus.subscribe((ev) => {
        if (ev.type === "run" && ev.summary.ref.run === run) check();
      });
      signal?.addEventListener("abort", () => {
        off();
        reject(coerceError(signal.reason));
      }, { once: true });
      check();
    });
  }

  // --- events ------------------------------------------------------------------------

  private publishRun(e: RunEntry): void {
    this.publishEvent({ v: 1, type: "run", summary: { ...summarize(e), ...(this.o.clustered ? { name: e.record.flow.name } : {}) } });
  }

  private publishEvent(ev: RunEvent): void {
    if (ev.type === "log" && this.o.console !== undefined) {
      this.o.console(`${new Date(ev.line.at).toISOString()} [${ev.ref.flow}.${ev.node}] ${ev.line.text}`);
    }
    if (this.o.clustered) this.indexEvent(ev);
    this.o.bus.publish(ev);
  }

  /** Keeps the shared run index in step (one connection, so in order). */
  private indexEvent(ev: RunEvent): void {
    let key: string;
    let write: () => Promise<void>;
    if (ev.type === "run") {
      const entry = { run: ev.summary.ref.run, flow: ev.summary.ref.flow, state: ev.summary.state, json: JSON.stringify(ev.summary) };
      key = `run:${entry.run}`;
      write = () => this.o.state.indexRun(entry);
    } else if (ev.type === "node") {
      const { run } = ev.ref;
      const json = JSON.stringify(ev.node);
      key = `node:${run}:${ev.node.id}`;
      write = () => this.o.state.indexNode(run, ev.node.id, json);
    } else return;
    // A newer write of the same entry supersedes an older one, failed or still in flight.
    this.indexBacklog.delete(key);
    const seq = ++this.indexSeq;
    this.indexInFlight.set(key, seq);
    write().then(
      () => {
        if (this.indexInFlight.get(key) === seq) this.indexInFlight.delete(key);
      },
      (e: unknown) => {
        if (this.indexInFlight.get(key) !== seq) return;
        this.indexInFlight.delete(key);
        if (this.indexBacklog.size === 0) this.o.log.warn({ err: coerceError(e) }, "could not update the run index; will retry");
        this.indexBacklog.set(key, write);
      },
    );
  }

  private indexSeq = 0;
  private readonly indexInFlight = new Map<string, number>();

  /** Index writes that failed while the cluster state was away, newest per entry. */
  private readonly indexBacklog = new Map<string, () => Promise<void>>();

  private async flushIndexBacklog(): Promise<void> {
    for (const [key, write] of [...this.indexBacklog]) {
      await write();
      if (this.indexBacklog.get(key) === write) this.indexBacklog.delete(key);
    }
  }

  // --- recovery ----------------------------------------------------------------------

  /** Rebuilds state from disk after a start: pends wait again, active runs go on or end lost. */
  private async recover(): Promise<void> {
    const { recoverRuns } = await import("./recovery.js");
    await recoverRuns({
      files: this.files,
      index: this.index,
      state: this.o.state,
      host: this.o.host,
      log: this.o.log,
      pendOf: (r) => this.pendOf(r),
      resume: async (e, statuses) => {
        await this.prepareWorkspace(e.record);
        const ex = this.executorFor(e);
        this.publishRun(e);
        ex.resume(statuses);
      },
      finish: (e, result, reason) => this.finish(e, result, reason),
      readStatus: (state, r, node) => this.readStatus(state, r, node),
    });
  }

  // --- stopping ------------------------------------------------------------------------

  /**
   * Stops taking work and waits for active runs to end, up to `graceMs`; runs still active
   * then are left on disk, their tasks killed, to be resumed by the next start.
   */
  stop(graceMs = 0): Promise<void> {
    this.stopPromise ??= (async () => {
      this.state = "stopping";
      if (this.syncTimer !== undefined) clearTimeout(this.syncTimer);
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && [...this.index.all()].some((e) => e.state === "active")) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const errors: unknown[] = [];
      for (const e of this.index.all()) {
        if (e.executor !== undefined) await e.executor.suspend().catch((err: unknown) => errors.push(err));
      }
      await Promise.allSettled([...this.endings]);
      for (const run of [...this.nodeFiles.keys()]) await this.closeNodeFiles(run).catch((err: unknown) => errors.push(err));
      await this.remover.flush();
      // A renewal in flight would register the host again after its removal.
      await this.lease.stop();
      await this.o.state.removeHost(this.o.host).catch((err: unknown) => errors.push(err));
      this.state = "stopped";
      if (errors.length > 0) throw new AggregateError(errors, "hub stopped with errors");
    })();
    return this.stopPromise;
  }
}
