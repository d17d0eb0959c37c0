/**
 * What a host answers about runs and hosts: from its own table and files for the runs it
 * knows, and — in a cluster — from the shared run index and the JetStream history for runs
 * of other hosts, so that every host can show every run.
 */
import type { Flow } from "../flows/model.js";
import type { Bus } from "../store/bus.js";
import type { RunDirState, RunFiles } from "../store/run-files.js";
import type { ClusterLink } from "./cluster-link.js";
import type { ClusterState } from "./cluster-state.js";
import { coerceError, FloeError } from "./errors.js";
import type { NodeFiles } from "./node-files.js";
import { flowNodes, indexedRunDetail } from "./indexed-run.js";
import { NodeRuntime } from "./node-runtime.js";
import { recordFromState } from "./pend.js";
import { summarize, type RunEntry, type RunQuery, type RunTable, type RunTally } from "./run-table.js";
import { readNodeLines, readRecords } from "./status-files.js";
import type { LogLine, NodeStatus, RunDetail, RunEvent, RunState, RunSummary } from "./types.js";
import { parseLogLine, parseNodeStatus, parseRunSummary } from "./wire-checks.js";

export interface HostInfo {
  readonly name: string;
  readonly tags: readonly string[];
  readonly slots: number;
  readonly running: number;
  readonly up: boolean;
  readonly lastSeen: number;
  readonly address?: string;
}

export interface QueriesDeps {
  readonly host: string;
  readonly table: RunTable;
  readonly files: RunFiles;
  readonly nodeFiles: NodeFiles;
  readonly state: ClusterState;
  readonly bus: Bus<RunEvent>;
  /** Cluster mode: the shared run index and other hosts' logs. */
  readonly link?: ClusterLink;
  /** This host's copy of a flow version, if it has it. */
  flowVersion(id: string, ver: number): Flow | undefined;
  /** Cluster mode: waits for this host's own writes of the run index not sent yet (hub/index-mirror.ts). */
  settleIndex?(): Promise<void>;
}

/** Which lines of a node's output to read. */
export interface LogQuery {
  /** The run attempt. @defaultValue the run's latest */
  readonly attempt?: number;
  /** Lines after this line number (lines are numbered from 1 in each attempt). @defaultValue 0 */
  readonly after?: number;
  /** @defaultValue 1000 */
  readonly limit?: number;
}

export interface LogPage {
  readonly lines: LogLine[];
  readonly state: RunState;
  /** The run attempt the lines are of. */
  readonly attempt: number;
  /** Every attempt of the run, oldest first (1 … its latest). */
  readonly attempts: readonly number[];
}

export class Queries {
  constructor(private readonly d: QueriesDeps) {}

  private get clustered(): boolean {
    return this.d.link !== undefined;
  }

  /** Hosts of the cluster as the shared state sees them. */
  async hosts(): Promise<HostInfo[]> {
    // Each host reports its running runs with every renewal: no snapshot of the whole state.
    return (await this.d.state.hosts())
      .map(({ host: h, up }) => ({ name: h.name, tags: h.tags, slots: h.slots, running: h.running, up, lastSeen: h.lastSeen, ...(h.address ? { address: h.address } : {}) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Runs this host knows (its own; in a cluster, queryRuns sees every host's). */
  listRuns(q: RunQuery): RunSummary[] {
    return this.d.table.query(q);
  }

  /** How many runs this host knows in each state (metrics): counted, not listed. */
  tallyRuns(): RunTally {
    return this.d.table.tally();
  }

  /** How many runs of a flow are pending, active and archived (in a cluster: on every host). */
  async countRuns(flow: string): Promise<Record<RunState, number>> {
    if (this.clustered) {
      await this.d.settleIndex?.();
      return this.d.state.countRuns(flow);
    }
    const out = { pending: 0, active: 0, archived: 0 };
    for (const e of this.d.table.all()) if (e.record.ref.flow === flow) out[summarize(e).state]++;
    return out;
  }

  /** Runs across the cluster, newest first. */
  async queryRuns(q: RunQuery): Promise<RunSummary[]> {
    if (!this.clustered) return this.d.table.query(q);
    await this.d.settleIndex?.();
    const json = await this.d.state.listRuns({ limit: q.limit ?? 50, ...(q.flow !== undefined ? { flow: q.flow } : {}), ...(q.state !== undefined ? { state: q.state } : {}), ...(q.before !== undefined ? { before: q.before } : {}) });
    return json.map((j) => parseRunSummary(j));
  }

  /** A run as the cluster's run index has it (any host's), without its nodes. */
  async indexedSummary(run: string): Promise<(RunSummary & { readonly name?: string }) | undefined> {
    await this.d.settleIndex?.();
    const got = await this.d.state.getRun(run);
    return got === undefined ? undefined : parseRunSummary(got.json);
  }

  /** The host executing a run elsewhere in the cluster, if it is not this one. */
  async remoteHost(run: string): Promise<string | undefined> {
    if (!this.clustered) return undefined;
    const sum = await this.indexedSummary(run);
    if (sum === undefined) return undefined;
    return sum.state === "active" && sum.ref.execHost !== undefined && sum.ref.execHost !== this.d.host ? sum.ref.execHost : undefined;
  }

  entry(run: string): RunEntry {
    const e = this.d.table.get(run);
    if (e === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
    return e;
  }

  async getRun(run: string): Promise<RunDetail> {
    const local = this.d.table.get(run);
    if (local === undefined && this.clustered) {
      await this.d.settleIndex?.();
      const got = await this.d.state.getRun(run);
      if (got === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
      const sum = parseRunSummary(got.json);
      return indexedRunDetail(sum, Object.values(got.nodes).map((j) => parseNodeStatus(j)), await this.flowOf(sum));
    }
    const e = this.entry(run);
    const nodes = e.state === "active" ? e.executor.statuses() : await this.nodesFromFiles(e);
    return { ...summarize(e), name: e.record.flow.name, nodes };
  }

  /**
   * The flow a run of another host runs: its record's, while the cluster keeps it (a live
   * run's, and an ended one's for a while), else this host's copy of that flow version.
   */
  private async flowOf(sum: RunSummary): Promise<Flow | undefined> {
    const record = recordFromState(await this.d.state.getRecord(sum.ref.run));
    if (record !== undefined && record.ref.run === sum.ref.run) return record.flow;
    return this.d.flowVersion(sum.ref.flow, sum.ref.ver);
  }

  private async nodesFromFiles(e: RunEntry): Promise<NodeStatus[]> {
    const dir = dirOf(e);
    const flow = e.record.flow;
    const out: NodeStatus[] = [];
    // One read of the run's journal for all its nodes.
    const records = e.state === "pending" ? undefined : await readRecords(this.d.files, dir, e.record);
    for (const n of flowNodes(flow)) {
      const rt = new NodeRuntime(n, e.record.attempt);
      if (records !== undefined) {
        rt.restore(records.statuses.get(n.id) ?? []);
        rt.logLines = (await readNodeLines(this.d.files, dir, e.record, n.id, records)).length;
        if (e.state === "archived") rt.skipIfUnreached();
      }
      out.push(rt.status());
    }
    return out;
  }

  /**
   * Output lines of a node in one run attempt (the latest unless asked), after line `after`,
   * at most `limit`. The latest attempt's lines of a run held here come from its log file;
   * an earlier attempt ran on another host (the run was requeued after a host loss), and
   * the lines of a run held elsewhere are read from the cluster's history.
   */
  async readLog(run: string, node: string, q: LogQuery = {}): Promise<LogPage> {
    const after = q.after ?? 0;
    const limit = q.limit ?? 1000;
    const local = this.d.table.get(run);
    if (local === undefined && this.d.link !== undefined) {
      const sum = await this.indexedSummary(run);
      if (sum === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
      const attempt = attemptOf(run, q.attempt, sum.attempt);
      return { lines: await this.d.link.logs(run, node, attempt, after, limit), state: sum.state, attempt, attempts: upTo(sum.attempt) };
    }
    const e = this.entry(run);
    const state = summarize(e).state;
    if (![...e.record.flow.triggers, ...e.record.flow.tasks].some((n) => n.id === node)) throw new FloeError("E_NODE_NOT_FOUND", `run "${run}" has no node "${node}"`);
    const latest = e.record.attempt;
    const attempt = attemptOf(run, q.attempt, latest);
    const page = (lines: LogLine[]): LogPage => ({ lines, state, attempt, attempts: upTo(latest) });
    if (attempt !== latest) return page(this.d.link === undefined ? [] : await this.d.link.logs(run, node, attempt, after, limit));
    if (e.state === "pending") return page([]);
    // What is written is read; the flushes wait for what is still queued in this process.
    await Promise.all([this.d.nodeFiles.openLog(run, node)?.flush(), this.d.nodeFiles.openJournal(run)?.flush()]);
    // A host's log file holds one run attempt's lines only (a requeued attempt runs on another
    // host, and a host drops its copy of a run taken from it): lines without their attempt are of this one.
    const all = (await readNodeLines(this.d.files, dirOf(e), e.record, node)).map((x) => parseLogLine(x, latest)).filter((l) => l !== undefined);
    return page(all.filter((l) => l.seq > after).slice(0, limit));
  }

  /** Waits until a run is archived (tests and `floe run`). */
  waitForEnd(run: string, signal?: AbortSignal): Promise<RunSummary> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const e = this.d.table.get(run);
        if (e?.state !== "archived") return false;
        off();
        resolve(summarize(e));
        return true;
      };
      const off = this.d.bus.subscribe((ev) => {
        if (ev.type === "run" && ev.summary.ref.run === run) check();
      });
      signal?.addEventListener("abort", () => {
        off();
        reject(coerceError(signal.reason));
      }, { once: true });
      check();
    });
  }
}

/** The attempt asked for, or the latest; one the run never had is not found. */
function attemptOf(run: string, asked: number | undefined, latest: number): number {
  if (asked === undefined) return latest;
  if (!Number.isInteger(asked) || asked < 1 || asked > latest) throw new FloeError("E_NOT_FOUND", `run "${run}" has no attempt ${asked} (its attempts: ${upTo(latest).join(", ")})`);
  return asked;
}

function upTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/** The folder a run's files are in now. */
function dirOf(e: RunEntry): RunDirState {
  return e.state === "pending" ? "pending" : e.state === "archived" ? "archive" : "active";
}
