/**
 * The hub of one host: the parts of a run's life, wired together, behind a lifecycle that
 * cannot be misused. A run's life reads in the files of hub/, in its order:
 *
 *   adoption → pend → dispatcher (dispatch.ts: the rule) → activation → executors
 *   (run-executor.ts: one run) → finisher → retention,
 *
 * with run-table (the one writer of run entries), run-folders and node-files (disk), lease
 * and fencing (a host's hold on its runs), publisher and index-mirror (news), queries and
 * commands (the API's side), recovery (a start), and cluster-sync (cluster mode only).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { HostCommands, TaskRunner } from "../agent/contract.js";
import type { Config, Flow } from "../flows/model.js";
import type { Bus } from "../store/bus.js";
import type { RemoteObjects } from "../store/nats-objects.js";
import { ObjectStore, type SweepResult } from "../store/object-store.js";
import { RunFiles } from "../store/run-files.js";
import { Activation } from "./activation.js";
import { Adoption, type TriggerRequest } from "./adoption.js";
import { ChildRuns } from "./child-runs.js";
import { ArtifactObjects } from "./artifact-objects.js";
import { ArtifactSweep } from "./artifact-sweep.js";
import { BatchRemover } from "./batch-remover.js";
import type { ClusterLink } from "./cluster-link.js";
import type { ClusterState } from "./cluster-state.js";
import { ClusterSync } from "./cluster-sync.js";
import { Commands } from "./commands.js";
import { Debounce } from "./debounce.js";
import { Dispatcher } from "./dispatcher.js";
import { Executors } from "./executors.js";
import { Fencing } from "./fencing.js";
import { Finisher } from "./finisher.js";
import { IndexMirror } from "./index-mirror.js";
import { DEFAULT_LEASE_MS, Lease } from "./lease.js";
import { tickPhase } from "./tick-phase.js";
import { Lifecycle, type HubState } from "./lifecycle.js";
import { NodeFiles } from "./node-files.js";
import { OnUpdate } from "./on-update.js";
import { Pauses } from "./pause.js";
import { Publisher } from "./publisher.js";
import { Reruns, type RerunRequest } from "./rerun.js";
import { TaintedRuns, type TaintedRun } from "./tainted.js";
import { Queries, type HostInfo, type LogPage, type LogQuery } from "./queries.js";
import { recoverRuns } from "./recovery.js";
import { Retention } from "./retention.js";
import { runIdFactory } from "./run-ids.js";
import { RunFolders } from "./run-folders.js";
import type { RunRecord } from "./run-record.js";
import { RunTable, summarize, type RunQuery, type RunTally } from "./run-table.js";
import { NO_SECRETS, type TaskSecrets } from "./secrets.js";
import { artifactNameProblem, TaskArtifacts } from "./task-artifacts.js";
import type { RunEndListener } from "./notifier.js";
import { FloeError } from "./errors.js";
import type { ArtifactRef, HostName, NodeStatus, RunDetail, RunEvent, RunState, RunSummary } from "./types.js";
import { now } from "../store/clock.js";
import { Failover } from "./failover.js";

export type { HubState, TriggerRequest };

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
  /** The host's system programs (rm, chattr, killing leftover task groups), through the agent. */
  readonly commands: HostCommands;
  readonly bus: Bus<RunEvent>;
  readonly state: ClusterState;
  /** Task output in the console form `<time> [flow.node RUN4] text` (console-line.ts). */
  readonly console?: (line: string) => void;
  readonly killGraceMs?: number;
  /** Cluster mode: runs are indexed in the shared state, lost hosts reaped, leases fenced. */
  readonly clustered?: boolean;
  /** How long a host's lease lasts without a renewal. @defaultValue DEFAULT_LEASE_MS */
  readonly leaseMs?: number;
  /** Cluster mode: logs and requests of other hosts' runs. */
  readonly link?: ClusterLink;
  /** Told of every run that ends on this host (notifications). */
  readonly notifier?: RunEndListener;
  /** The host's secrets (common.secrets). @defaultValue none */
  readonly secrets?: TaskSecrets;
  /** Cluster mode: the shared bucket of artifacts, over this host's object store (store/nats-objects.ts). */
  readonly remoteObjects?: (local: ObjectStore) => RemoteObjects;
}

export class Hub {
  private readonly life = new Lifecycle();
  private readonly table = new RunTable();
  private config: Config;
  private readonly files: RunFiles;
  private readonly folders: RunFolders;
  private readonly lease: Lease;
  private readonly dispatcher: Dispatcher;
  private readonly finisher: Finisher;
  private readonly retention: Retention;
  private readonly nodeFiles: NodeFiles;
  private readonly executors: Executors;
  private readonly fencing: Fencing;
  private readonly adoption: Adoption;
  private readonly queries: Queries;
  private readonly commands: Commands;
  private readonly pauses: Pauses;
  private readonly debounce: Debounce;
  private readonly reruns: Reruns;
  private readonly onUpdate: OnUpdate;
  private readonly tainted: TaintedRuns;
  private readonly children: ChildRuns;
  private readonly objects: ArtifactObjects;
  private readonly taskArtifacts: TaskArtifacts;
  private readonly sweep: ArtifactSweep;
  private readonly mirror: IndexMirror | undefined;
  private readonly sync: ClusterSync | undefined;
  private readonly failover: Failover;
  private readonly startedAt = now();
  private address: string | undefined;
  private stopping: Promise<void> | undefined;
  /** Resolved once the runs on disk are recovered and the hub takes work (child runs wait for it). */
  private readonly ready = deferred();

  constructor(private readonly o: HubOptions) {
    const { state, log, bus, host } = o;
    const clustered = o.clustered === true;
    const table = this.table;
    const newRunId = runIdFactory();
    this.config = o.config;
    const files = (this.files = new RunFiles(o.root));
    const mirror = (this.mirror = clustered ? new IndexMirror(state, log) : undefined);
    const publisher = new Publisher(bus, o.console, mirror);
    const nodeFiles = (this.nodeFiles = new NodeFiles(files));
    const folders = (this.folders = new RunFolders(files, o.root, o.config, o.commands, log));
    const objectStore = new ObjectStore(o.root);
    this.objects = new ArtifactObjects(objectStore, log.child({ part: "artifacts" }), o.remoteObjects?.(objectStore));
    this.taskArtifacts = new TaskArtifacts(this.objects, join(o.root, "scratch"), () => this.config.common.artifacts);
    const sweep = (this.sweep = new ArtifactSweep({ table, files, objects: objectStore, log: log.child({ part: "artifacts" }), settings: () => this.config.common.artifacts }));
    this.retention = new Retention(table, files, folders, new BatchRemover(o.commands, log), () => this.config, () => sweep.request());
    const finisher = (this.finisher = new Finisher({ table, files, nodeFiles, state, publisher, log, clustered, ...(mirror !== undefined ? { mirror } : {}), ...(o.notifier !== undefined ? { runEnded: o.notifier.runEnded.bind(o.notifier) } : {}), afterEnd: async (r, unattended) => this.afterEnd(r, unattended) }));
    this.lease = new Lease(o.leaseMs ?? DEFAULT_LEASE_MS, {
      renew: async (leaseMs, marginMs) => {
        // After a failover the host registers its runs again before a renewal may vouch.
        const epoch = await this.failover.follow();
        const out = await state.heartbeat(this.hostRecord(), leaseMs, marginMs);
        await this.failover.checkStill(epoch);
        return out;
      },
      probe: () => state.ping(),
      standDown: () => this.fencing.standDown(),
      regained: (outcome) => this.fencing.regained(outcome),
      // An embedded host is the only one: no other host can take its runs.
      selfFence: clustered,
      tickPhase: () => tickPhase(o.host, state.hostsAtHeartbeat()),
      log,
    });
    const children = (this.children = new ChildRuns({
      clustered,
      state,
      bus,
      log,
      newRunId: () => newRunId(),
      findFlow: (id, ver) => this.adoption.findFlow(id, ver),
      trigger: (req) => this.adoption.trigger(req),
      cancel: (run, by) => this.commands.cancel(run, by),
      summary: (run) => this.childSummary(run),
      runningHere: (run) => table.get(run)?.state === "active",
      ready: this.ready.promise,
      // A run waiting for its child lends its slot: the cluster hears of the host's new
      // slots at once, and its dispatcher looks again.
      lendingChanged: () => void this.lease.renewNow().then(() => this.dispatcher.kick()),
    }));
    const executors = (this.executors = new Executors({ children, runTask: o.runTask, table, folders, nodeFiles, publisher, finisher, log, config: () => this.config, secrets: o.secrets ?? NO_SECRETS, artifacts: this.taskArtifacts, mayRun: () => this.life.state === "starting" || this.life.running, ...(o.killGraceMs !== undefined ? { killGraceMs: o.killGraceMs } : {}), mayStartTask: (run, signal) => this.fencing.mayStartTask(run, signal) }));
    this.failover = new Failover({ host, table, state, log, heldHere: (run) => this.debounce.holds(run) || this.onUpdate.holds(run), fence: () => this.fencing.fence(), reindex: (e) => {
        const summary: RunSummary & { name: string } = { ...summarize(e), name: e.record.flow.name };
        mirror?.write({ v: 1, type: "run", summary });
      } });
    const fencing = (this.fencing = new Fencing({ table, files, nodeFiles, state, commands: o.commands, executors, finisher, log, clustered, lease: () => this.lease, resumed: () => this.dispatcher.kick() }));
    const activation = new Activation({ host, table, files, folders, nodeFiles, state, executors, finisher, log, running: () => this.life.running });
    const dispatcher = (this.dispatcher = new Dispatcher({ state, table, host, publisher, log, mayClaim: () => !clustered || this.lease.vouched, activate: (run, token, rec) => activation.activate(run, token, rec) }));
    const debounce = (this.debounce = new Debounce({ table, files, state, finisher, publisher, clustered, log, released: () => dispatcher.kick() }));
    const onUpdate = (this.onUpdate = new OnUpdate({ host, table, state, finisher, publisher, clustered, log, config: () => this.config, released: () => dispatcher.kick(), ...(clustered ? { ticks: this.lease } : {}) }));
    this.adoption = new Adoption({ debounce, onUpdate, config: () => this.config, configDir: o.configDir, host, clustered, files, folders, state, table, publisher, finisher, newRunId, log, assertRunning: () => this.life.assertRunning(), adopted: () => dispatcher.kick(), mayTake: () => dispatcher.mayTakeAtAdoption(), taking: (add) => dispatcher.taking(add), took: (c) => dispatcher.took(c) });
    const link = clustered ? o.link : undefined;
    const queries = (this.queries = new Queries({ host, table, files, nodeFiles, state, bus, ...(link !== undefined ? { link } : {}), flowVersion: (id, ver) => this.config.flows.find((f) => f.id === id && f.ver === ver), ...(mirror !== undefined ? { settleIndex: () => mirror.settle() } : {}) }));
    const commands = (this.commands = new Commands({ unhold: (run) => debounce.take(run) || onUpdate.take(run), table, state, queries, finisher, fencing, publisher, ...(link !== undefined ? { link } : {}) }));
    const current = (flow: string): Flow => onUpdate.definitionFor(this.adoption.findFlow(flow));
    this.reruns = new Reruns({ host, table, files, state, queries, adoption: this.adoption, clustered, newRunId, config: () => this.config, current });
    this.tainted = new TaintedRuns({ table, queries, state, clustered, current, rerunsOf: (run) => this.reruns.rerunsOf(run) });
    const pauses = (this.pauses = new Pauses({ table, files, state, queries, publisher, clustered, ...(link !== undefined ? { link } : {}) }));
    this.sync = mirror !== undefined && link !== undefined ? new ClusterSync({ host, table, files, state, bus, link, mirror, dispatcher, publisher, queries, commands, pauses, lease: this.lease, log, fence: () => this.fencing.fence(), parentEnded: (r) => this.children.parentEnded(r), ...(o.notifier !== undefined ? { notifier: o.notifier } : {}) }) : undefined;
  }

  get host(): HostName {
    return this.o.host as HostName;
  }

  get bus(): Bus<RunEvent> {
    return this.o.bus;
  }

  get state(): HubState {
    return this.life.state;
  }

  get currentConfig(): Config {
    return this.config;
  }

  /** Where this host's API listens, shown to the cluster from the next heartbeat on. */
  advertise(url: string): void {
    this.address = url;
  }

  // --- lifecycle -------------------------------------------------------------------------

  /** Renews the lease, recovers the runs on disk, then takes work. Once only. */
  async start(): Promise<void> {
    this.life.beginStart();
    await mkdir(join(this.o.root, "floes"), { recursive: true });
    await this.lease.begin();
    // Nothing of it is needed now: the tries it was made for have ended, or run again afresh.
    await this.taskArtifacts.clear();
    await recoverRuns({ held: (r) => this.recoverHeld(r), files: this.files, table: this.table, state: this.o.state, commands: this.o.commands, executors: this.executors, finisher: this.finisher, host: this.o.host, clustered: this.o.clustered === true, log: this.o.log });
    if (!this.life.started()) return; // stopped while starting
    this.ready.resolve();
    await this.onUpdate.start();
    this.sync?.start();
    this.dispatcher.open();
    // Objects of runs pruned before this start.
    this.sweep.request();
  }

  /** A new config (SIGHUP): new runs use it; running runs keep the flow they started with. */
  reload(config: Config): void {
    const before = this.config;
    this.config = config;
    this.onUpdate.reloaded(before, config);
    this.folders.reload(config);
    this.dispatcher.kick();
  }

  /**
   * Stops taking work and waits for active runs to end, up to `graceMs`; runs still active
   * then are left on disk, their tasks killed, to be resumed by the next start. In order,
   * each step after the one before has finished: dispatcher idle → executors suspended →
   * finisher drained → index flushed → lease stopped → host removed. Idempotent.
   */
  stop(graceMs = 0): Promise<void> {
    this.stopping ??= (async () => {
      this.life.beginStop();
      this.sync?.stop();
      this.debounce.stop();
      this.onUpdate.stop();
      const errors: unknown[] = [];
      await this.dispatcher.stop();
      const deadline = performance.now() + graceMs;
      while (performance.now() < deadline && this.table.count((e) => e.state === "active") > 0) await new Promise((r) => setTimeout(r, 100));
      for (const e of [...this.table.all()]) {
        if (e.state !== "active") continue;
        this.table.suspend(e.record.ref.run, "stopping");
        await e.executor.suspend().catch((err: unknown) => errors.push(err));
      }
      await this.finisher.drain();
      errors.push(...(await this.nodeFiles.closeAll()));
      await this.mirror?.drain().catch((err: unknown) => errors.push(err));
      await this.retention.flush();
      await this.sweep.stop();
      // After a renewal in flight, which would register the host again after its removal.
      await this.lease.stop();
      await this.o.state.removeHost(this.o.host).catch((err: unknown) => errors.push(err));
      this.life.stopped();
      if (errors.length > 0) throw new AggregateError(errors, "hub stopped with errors");
    })();
    return this.stopping;
  }

  // --- what the rest of the host asks (adoption.ts, queries.ts, commands.ts) -------------

  findFlow = (id: string, ver?: number): Flow => this.adoption.findFlow(id, ver);
  /** Adopts a trigger into a run: the pend is durable before this returns. */
  trigger = (req: TriggerRequest): Promise<RunSummary> => this.adoption.trigger(req);
  hosts = (): Promise<HostInfo[]> => this.queries.hosts();
  listRuns = (q: RunQuery): RunSummary[] => this.queries.listRuns(q);
  tallyRuns = (): RunTally => this.queries.tallyRuns();
  countRuns = (flow: string): Promise<Record<RunState, number>> => this.queries.countRuns(flow);
  queryRuns = (q: RunQuery): Promise<RunSummary[]> => this.queries.queryRuns(q);
  /** One run, with the re-runs made of it (rerun.ts keeps that list). */
  getRun = async (run: string): Promise<RunDetail> => {
    const detail = await this.queries.getRun(run);
    const reruns = await this.reruns.rerunsOf(run);
    return reruns.length > 0 ? { ...detail, reruns } : detail;
  };
  /** Archived runs of a flow made by a definition that has since changed (tainted.ts). */
  taintedRuns = (flow: string): Promise<TaintedRun[]> => this.tainted.list(flow);
  rerun = (run: string, req: RerunRequest): Promise<RunSummary> => {
    this.life.assertRunning();
    return this.reruns.rerun(run, req);
  };
  readLog = (run: string, node: string, q?: LogQuery): Promise<LogPage> => this.queries.readLog(run, node, q);
  waitForEnd = (run: string, signal?: AbortSignal): Promise<RunSummary> => this.queries.waitForEnd(run, signal);
  workspaceForRun = (run: string): string => this.folders.workspaceOf(this.queries.entry(run).record);
  submitData = (run: string, node: string, values: unknown, reject?: string, by?: string): Promise<NodeStatus> => this.commands.submitData(run, node, values, reject, by);
  postData = (run: string, node: string, values: unknown, reject?: string, by?: string): NodeStatus => this.commands.postData(run, node, values, reject, by);
  cancel = (run: string, by: string): Promise<RunSummary> => this.commands.cancel(run, by);
  /** The flow a run of this host ran (its snapshot), else this host's copy of its version. */
  flowOfRun = (s: RunSummary): Flow | undefined => this.table.get(s.ref.run)?.record.flow ?? this.config.flows.find((f) => f.id === s.ref.flow && f.ver === s.ref.ver);
  /**
   * An artifact of a node of a run (any host's): its record and its file on this host,
   * fetched from the cluster when this host does not have it.
   */
  artifact = async (run: string, node: string, name: string): Promise<{ ref: ArtifactRef; path: string }> => {
    const bad = artifactNameProblem(name);
    if (bad !== undefined) throw new FloeError("E_ARTIFACT_NOT_FOUND", `no artifact ${JSON.stringify(name)}: ${bad}`);
    const detail = await this.queries.getRun(run);
    const n = detail.nodes.find((x) => x.id === node);
    if (n === undefined) throw new FloeError("E_NODE_NOT_FOUND", `run "${run}" has no node "${node}"`);
    const ref = n.artifacts?.find((a) => a.name === name);
    if (ref === undefined) throw new FloeError("E_ARTIFACT_NOT_FOUND", `node "${node}" of run "${run}" has no artifact "${name}"${n.artifacts?.length ? ` (it has ${n.artifacts.map((a) => a.name).join(", ")})` : ""}`);
    return { ref, path: await this.objects.localPath(ref.sha256) };
  };
  /** Sweeps the artifacts no kept run references now (retention does it by itself). */
  pruneArtifacts = (): Promise<SweepResult | undefined> => this.sweep.sweep();
  pause = (run: string, by: string): Promise<RunSummary> => this.pauses.set(run, by, true);
  resume = (run: string, by: string): Promise<RunSummary> => this.pauses.set(run, by, false);

  // --- wiring ----------------------------------------------------------------------------

  private hostRecord(): Parameters<ClusterState["heartbeat"]>[0] {
    const running = this.table.count((e) => e.state === "active");
    return { name: this.o.host, tags: this.o.tags, slots: this.o.slots + this.children.lending(), running, lastSeen: now(), startedAt: this.startedAt, ...(this.address !== undefined ? { address: this.address } : {}) };
  }

  /**
   * A pend found on disk at start that was held back from the shared list (debounce, drain)
   * and not yet released onto it: held again. (Released ones recover as any pend.)
   */
  private async recoverHeld(r: RunRecord): Promise<boolean> {
    if (r.debounceUntil === undefined && r.drainFor === undefined) return false;
    const [phase] = await this.o.state.phases([r.ref.run]);
    if (phase !== undefined) return false;
    if (r.debounceUntil !== undefined) {
      this.debounce.recover(r);
      return true;
    }
    if (r.drainFor !== undefined) {
      this.table.adopt(r);
      this.onUpdate.hold(r);
      return true;
    }
    return false;
  }

  /**
   * A run ended: its slot and resources may let a pend start — unless its release found on
   * the shared list only pends that woken hosts are about to take (`unattended` 0), when a
   * pass would start nothing; its scratch area goes; retention; children it left running
   * are cancelled.
   */
  private afterEnd(r: RunRecord, unattended: number | undefined): void {
    const run = r.ref.run;
    if (unattended !== 0) this.dispatcher.kick();
    this.taskArtifacts.forgetRun(run).catch((err: unknown) => this.o.log.warn({ err, run }, "could not remove the run's scratch area"));
    this.retention.prune(r.ref.flow, r.ref.ver);
    void this.children.parentEnded(r).catch((err: unknown) => this.o.log.warn({ err, run }, "could not cancel the children of an ended run"));
  }

  /** A run as this host has it, or (a pend copy here, or a run of another host) as the cluster's index has it. */
  private async childSummary(run: string): Promise<RunSummary | undefined> {
    const local = this.table.get(run);
    if (local !== undefined && (local.state !== "pending" || this.o.clustered !== true)) return summarize(local);
    if (this.o.clustered !== true) return undefined;
    return (await this.queries.indexedSummary(run)) ?? (local !== undefined ? summarize(local) : undefined);
  }
}

/** A promise and its resolve (Node 20 has no Promise.withResolvers). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
