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
import { RunFiles } from "../store/run-files.js";
import { Activation } from "./activation.js";
import { Adoption, type TriggerRequest } from "./adoption.js";
import { BatchRemover } from "./batch-remover.js";
import type { ClusterLink } from "./cluster-link.js";
import type { ClusterState } from "./cluster-state.js";
import { ClusterSync } from "./cluster-sync.js";
import { Commands } from "./commands.js";
import { Dispatcher } from "./dispatcher.js";
import { Executors } from "./executors.js";
import { Fencing } from "./fencing.js";
import { Finisher } from "./finisher.js";
import { IndexMirror } from "./index-mirror.js";
import { DEFAULT_LEASE_MS, Lease } from "./lease.js";
import { Lifecycle, type HubState } from "./lifecycle.js";
import { NodeFiles } from "./node-files.js";
import { Publisher } from "./publisher.js";
import { Queries, type HostInfo, type LogPage, type LogQuery } from "./queries.js";
import { recoverRuns } from "./recovery.js";
import { Retention } from "./retention.js";
import { runIdFactory } from "./run-ids.js";
import { RunFolders } from "./run-folders.js";
import { RunTable, type RunQuery, type RunTally } from "./run-table.js";
import type { HostName, NodeStatus, RunDetail, RunEvent, RunState, RunSummary } from "./types.js";

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
  private readonly mirror: IndexMirror | undefined;
  private readonly sync: ClusterSync | undefined;
  private readonly startedAt = Date.now();
  private address: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly o: HubOptions) {
    const { state, log, bus, host } = o;
    const clustered = o.clustered === true;
    const table = this.table;
    this.config = o.config;
    const files = (this.files = new RunFiles(o.root));
    const mirror = (this.mirror = clustered ? new IndexMirror(state, log) : undefined);
    const publisher = new Publisher(bus, o.console, mirror);
    const nodeFiles = (this.nodeFiles = new NodeFiles(files));
    const folders = (this.folders = new RunFolders(files, o.root, o.config, o.commands, log));
    this.retention = new Retention(table, files, folders, new BatchRemover(o.commands, log), () => this.config);
    const finisher = (this.finisher = new Finisher({ table, files, nodeFiles, state, publisher, log, clustered, afterEnd: async (r) => this.afterEnd(r.ref.flow, r.ref.ver) }));
    this.lease = new Lease(o.leaseMs ?? DEFAULT_LEASE_MS, {
      renew: (leaseMs, marginMs) => state.heartbeat(this.hostRecord(), leaseMs, marginMs),
      probe: () => state.ping(),
      standDown: () => this.fencing.standDown(),
      regained: (outcome) => this.fencing.regained(outcome),
      // An embedded host is the only one: no other host can take its runs.
      selfFence: clustered,
      log,
    });
    const executors = (this.executors = new Executors({ runTask: o.runTask, table, folders, nodeFiles, publisher, finisher, log, config: () => this.config, mayRun: () => this.life.state === "starting" || this.life.running, ...(o.killGraceMs !== undefined ? { killGraceMs: o.killGraceMs } : {}), mayStartTask: (run, signal) => this.fencing.mayStartTask(run, signal) }));
    const fencing = (this.fencing = new Fencing({ table, files, nodeFiles, state, commands: o.commands, executors, finisher, log, clustered, lease: () => this.lease, resumed: () => this.dispatcher.kick() }));
    const activation = new Activation({ host, table, files, folders, nodeFiles, state, executors, finisher, log, running: () => this.life.running });
    const dispatcher = (this.dispatcher = new Dispatcher({ state, table, host, publisher, log, mayClaim: () => !clustered || this.lease.vouched, activate: (run, token, rec) => activation.activate(run, token, rec) }));
    this.adoption = new Adoption({ config: () => this.config, configDir: o.configDir, host, clustered, files, folders, state, table, publisher, finisher, newRunId: runIdFactory(), log, assertRunning: () => this.life.assertRunning(), adopted: () => dispatcher.kick() });
    const link = clustered ? o.link : undefined;
    const queries = (this.queries = new Queries({ host, table, files, nodeFiles, state, bus, ...(link !== undefined ? { link } : {}), flowVersion: (id, ver) => this.config.flows.find((f) => f.id === id && f.ver === ver) }));
    const commands = (this.commands = new Commands({ table, state, queries, finisher, fencing, publisher, ...(link !== undefined ? { link } : {}) }));
    this.sync = mirror !== undefined && link !== undefined ? new ClusterSync({ host, table, files, state, bus, link, mirror, dispatcher, publisher, queries, commands, lease: this.lease, log }) : undefined;
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
    await recoverRuns({ files: this.files, table: this.table, state: this.o.state, commands: this.o.commands, executors: this.executors, finisher: this.finisher, host: this.o.host, clustered: this.o.clustered === true, log: this.o.log });
    if (!this.life.started()) return; // stopped while starting
    this.sync?.start();
    this.dispatcher.open();
  }

  /** A new config (SIGHUP): new runs use it; running runs keep the flow they started with. */
  reload(config: Config): void {
    this.config = config;
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
      const errors: unknown[] = [];
      await this.dispatcher.stop();
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && this.table.count((e) => e.state === "active") > 0) await new Promise((r) => setTimeout(r, 100));
      for (const e of [...this.table.all()]) {
        if (e.state !== "active") continue;
        this.table.suspend(e.record.ref.run, "stopping");
        await e.executor.suspend().catch((err: unknown) => errors.push(err));
      }
      await this.finisher.drain();
      errors.push(...(await this.nodeFiles.closeAll()));
      await this.mirror?.drain().catch((err: unknown) => errors.push(err));
      await this.retention.flush();
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
  getRun = (run: string): Promise<RunDetail> => this.queries.getRun(run);
  readLog = (run: string, node: string, q?: LogQuery): Promise<LogPage> => this.queries.readLog(run, node, q);
  waitForEnd = (run: string, signal?: AbortSignal): Promise<RunSummary> => this.queries.waitForEnd(run, signal);
  workspaceForRun = (run: string): string => this.folders.workspaceOf(this.queries.entry(run).record);
  submitData = (run: string, node: string, values: unknown, reject?: string, by?: string): Promise<NodeStatus> => this.commands.submitData(run, node, values, reject, by);
  postData = (run: string, node: string, values: unknown, reject?: string, by?: string): NodeStatus => this.commands.postData(run, node, values, reject, by);
  cancel = (run: string, by: string): Promise<RunSummary> => this.commands.cancel(run, by);

  // --- wiring ----------------------------------------------------------------------------

  private hostRecord(): Parameters<ClusterState["heartbeat"]>[0] {
    const running = this.table.count((e) => e.state === "active");
    return { name: this.o.host, tags: this.o.tags, slots: this.o.slots, running, lastSeen: Date.now(), startedAt: this.startedAt, ...(this.address !== undefined ? { address: this.address } : {}) };
  }

  /** A run ended: its slot and resources may let a pend start; retention. */
  private afterEnd(flow: string, ver: number): void {
    this.dispatcher.kick();
    this.retention.prune(flow, ver);
  }
}
