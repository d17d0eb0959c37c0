/**
 * Child runs: a `type: flow` task starts a run of another flow and ends as it ends (DESIGN
 * §6.2). The child is a real run, adopted as `POST /flows/:id/runs` adopts one (a pend on the
 * cluster's list, dispatched by its own host-tags and resource-tags to any host), with
 * trigger values = `values` + the task's environment values named in `pass` (+ `item` for
 * a fan-out instance). Its summary links to its parent (`parent: {run, node}`), the task's
 * status to it (`child`), and its end carries its outputs to the parent's host.
 *
 * Exactly one child per task try, across a crash of the parent's host: the child's id is
 * chosen here, journalled durably by the parent (its "child" status line) and only then
 * adopted under that id; a resumed task finds the id in its journal and re-attaches (adopting
 * it under that id if the crash came before the adoption). A requeued parent (a new run
 * attempt on another host, after on-host-loss: requeue) finds its children in the shared
 * state and re-attaches to the ones still running; one that ended is not reused (the new
 * attempt runs the task afresh, as it runs every task afresh).
 *
 * Cancel and timeouts reach the child: when the task's signal aborts while its run is still
 * held here (the run cancelled or timed out, the task timed out), the child is cancelled
 * wherever it runs. When the signal aborts because this host stops or stood down (the run is
 * suspended here), the child is left running for the resumed parent to re-attach to. A parent
 * that ends otherwise (lost with its host, on-host-loss: fail) has its live children
 * cancelled by whoever ends it (parentEnded()).
 */
import type { Logger } from "pino";
import type { TaskResult } from "../agent/contract.js";
import type { Flow, TaskNode } from "../flows/model.js";
import type { Bus } from "../store/bus.js";
import type { TriggerRequest } from "./adoption.js";
import type { ClusterState } from "./cluster-state.js";
import { coerceError, errorMessage } from "./errors.js";
import type { RunRecord } from "./run-record.js";
import type { NodeArtifacts } from "./task-artifacts.js";
import type { ArtifactRef, RunEvent, RunId, RunSummary } from "./types.js";

/** How deep child runs may nest: a run that is no child is at depth 0, its children at 1. */
export const MAX_CHILD_DEPTH = 8;
/** How often a waiting parent looks at its child besides the bus (an event lost with a connection, a reaped child). */
const POLL_MS = 5000;
/** How long a cancelled task waits for its child to end before it gives up waiting. */
const CANCEL_WAIT_MS = 15_000;

/** One instance of a fan-out task (`for-each`): its index and item. */
export interface TaskInstance {
  readonly index: number;
  readonly item: string;
  /** `for-each: artifacts`: the item's artifact (`<node>/<name>`), handed over to the child. */
  readonly artifact?: string;
}

/** One execution of a flow task, as run-executor.ts hands it over. */
export interface ChildCall {
  readonly parent: RunRecord;
  readonly node: TaskNode;
  /** The task's environment (`KEY=value`, later wins): where `pass` takes its values. */
  readonly env: readonly string[];
  /** The artifacts of the run's nodes that ended: where `opts.artifacts` takes what it hands over. */
  readonly upstream: readonly NodeArtifacts[];
  readonly instance?: TaskInstance;
  /** The child this task (instance) started before its host stopped, from its journal. */
  readonly known?: string;
  readonly signal: AbortSignal;
  /** Records the child's id durably (before it is adopted) and shows it on the node. */
  started(run: string): Promise<void>;
  /** A line in the task's log. */
  line(text: string): void;
}

export interface ChildRunsDeps {
  readonly clustered: boolean;
  readonly state: ClusterState;
  readonly bus: Bus<RunEvent>;
  readonly log: Logger;
  newRunId(): string;
  /** The flow a child of `id` (version `ver`, else the newest) would run; throws when there is none. */
  findFlow(id: string, ver?: number): Flow;
  /** Adopts a run (adoption.ts), under the id the request names. */
  trigger(req: TriggerRequest): Promise<RunSummary>;
  /** Cancels a run wherever it is in the cluster (commands.ts). */
  cancel(run: string, by: string): Promise<RunSummary>;
  /** A run's summary as this host or, in a cluster, the run index has it. */
  summary(run: string): Promise<RunSummary | undefined>;
  /** Whether a run is held and running here (not suspended for a stop or a stand-down). */
  runningHere(run: string): boolean;
  /**
   * Resolved once the host recovered the runs on its disk and takes work: a resumed parent
   * looks for its child (maybe a run of this host, recovered after it) only then.
   */
  readonly ready: Promise<void>;
  /** The number of runs lending their slot (`lending()`) changed: the host says so to the cluster. */
  lendingChanged?(): void;
}

/** The shared-state key of a run's children: `{ "<node>" or "<node>#<instance>": child run id }`. */
function childrenKey(run: string): string {
  return `children-${run}`;
}

function slotOf(node: string, instance: TaskInstance | undefined): string {
  return instance === undefined ? node : `${node}#${instance.index}`;
}

export class ChildRuns {
  /** Writes of a run's children map, one after another (fan-out instances start at once). */
  private readonly writing = new Map<string, Promise<void>>();
  /** Who waits for which child's end (waitForEnd), and the one bus subscription that tells them. */
  private readonly waiters = new Map<string, Set<(s: RunSummary) => void>>();
  private unsubscribe: (() => void) | undefined;
  /** Parent runs of this host waiting for a child's end, with how many of their tasks wait. */
  private readonly lenders = new Map<string, number>();

  constructor(private readonly d: ChildRunsDeps) {}

  /**
   * How many runs of this host wait for a child run: each lends its slot, which the host
   * adds to its own (hub.ts). Without this a parent kept its slot while its child waited
   * for one: a host whose every slot held a waiting parent (one parent with `--slots=1`,
   * two started together with two slots) waited for ever.
   */
  lending(): number {
    return this.lenders.size;
  }

  async run(c: ChildCall): Promise<ChildResult> {
    const { parent, node } = c;
    const flow = node.opts["flow"];
    if (typeof flow !== "string") return failed(`opts.flow of "${node.id}" names no flow`);
    const depth = (parent.parent?.depth ?? 0) + 1;
    if (depth > MAX_CHILD_DEPTH) {
      return failed(`child runs nest at most ${MAX_CHILD_DEPTH} deep: a run of flow ${flow} started here would be at depth ${depth} (run ${parent.ref.run} of flow ${parent.ref.flow} is a child at depth ${depth - 1})`);
    }
    const slot = slotOf(node.id, c.instance);
    if (!(await whenReady(this.d.ready, c.signal))) return { status: -1, reason: errorMessage(c.signal.reason ?? "stopped"), outputs: {} };
    let child = c.known;
    let sum = child === undefined ? undefined : await this.d.summary(child);
    if (child === undefined && parent.attempt > 1) {
      // A requeued parent: a child of an earlier attempt that still runs is this task's.
      const earlier = (await this.children(parent.ref.run))[slot];
      const s = earlier === undefined ? undefined : await this.d.summary(earlier);
      if (earlier !== undefined && s !== undefined && s.state !== "archived") {
        child = earlier;
        sum = s;
        await c.started(child);
      }
    }
    if (child !== undefined && sum !== undefined) {
      c.line(`re-attached to child run ${child} of flow ${sum.ref.flow} (${sum.state}${sum.result !== undefined ? `, ${sum.result}` : ""})`);
    } else if (child !== undefined && (await this.known(child))) {
      // The cluster has it though no summary shows it yet: waited for, never adopted twice.
      c.line(`re-attached to child run ${child}`);
    } else {
      const request = this.request(c, flow, depth);
      if ("error" in request) return failed(request.error);
      child ??= this.d.newRunId();
      await c.started(child);
      await this.remember(parent.ref.run, slot, child);
      try {
        sum = await this.d.trigger({ ...request, run: child });
      } catch (e) {
        return failed(`could not start a run of flow ${flow}: ${errorMessage(e)}`);
      }
      c.line(`started child run ${child} of flow ${flow} (version ${sum.ref.ver})`);
    }
    const waited = child;
    const end = sum?.state === "archived" ? sum : await this.lendWhile(parent.ref.run, () => this.waitForEnd(waited, c.signal));
    if (end === undefined) return this.stopped(c, child);
    return resultOf(child, end);
  }

  /** Runs `wait` with `run` counted among the lenders. */
  private async lendWhile<T>(run: string, wait: () => Promise<T>): Promise<T> {
    const n = this.lenders.get(run) ?? 0;
    this.lenders.set(run, n + 1);
    if (n === 0) this.d.lendingChanged?.();
    try {
      return await wait();
    } finally {
      const left = (this.lenders.get(run) ?? 1) - 1;
      if (left > 0) this.lenders.set(run, left);
      else {
        this.lenders.delete(run);
        this.d.lendingChanged?.();
      }
    }
  }

  /**
   * A run with flow tasks ended, maybe without its executor (lost with its host): its
   * children still running are cancelled (the executor's own end cancels them as it stops
   * its tasks; this is for the ends that have none), and its map of children, needed only
   * by a requeued attempt, is dropped from the shared state.
   */
  async parentEnded(r: RunRecord): Promise<void> {
    if (!r.flow.tasks.some((t) => t.class === "task" && t.type === "flow")) return;
    if (r.result !== "good") {
      for (const child of Object.values(await this.children(r.ref.run))) {
        const s = await this.d.summary(child).catch(() => undefined);
        if (s === undefined || s.state === "archived") continue;
        await this.d.cancel(child, `parent run ${r.ref.run} (it ended ${r.result ?? "?"})`).catch((e: unknown) => this.d.log.warn({ err: coerceError(e), run: child, parent: r.ref.run }, "could not cancel the child of an ended run"));
      }
    }
    await this.d.state.deleteValue(childrenKey(r.ref.run));
  }

  /** Whether the cluster's shared state has heard of a run (an embedded host's table, read by summary(), is the whole truth). */
  private async known(run: string): Promise<boolean> {
    if (!this.d.clustered) return false;
    const [phase] = await this.d.state.phases([run]);
    return phase !== undefined;
  }

  private hasTrigger(flow: string, ver: number | undefined): boolean {
    try {
      return this.d.findFlow(flow, ver).triggers.length > 0;
    } catch {
      return true; // no such flow: adoption says so
    }
  }

  private hasDataTrigger(flow: string, ver: number | undefined): boolean {
    try {
      return this.d.findFlow(flow, ver).triggers.some((t) => t.type === "data");
    } catch {
      return false; // no such flow: adoption says so
    }
  }

  /** The adoption request of a child: its flow, trigger and values, or why there is none. */
  private request(c: ChildCall, flow: string, depth: number): Omit<TriggerRequest, "run"> | { error: string } {
    const o = c.node.opts;
    const values: Record<string, string> = {};
    if (o["values"] !== null && typeof o["values"] === "object") {
      for (const [k, v] of Object.entries(o["values"] as Record<string, unknown>)) values[k] = String(v ?? "");
    }
    const env = new Map<string, string>();
    for (const e of c.env) {
      const at = e.indexOf("=");
      if (at > 0) env.set(e.slice(0, at), e.slice(at + 1));
    }
    const pass = Array.isArray(o["pass"]) ? (o["pass"] as unknown[]).filter((p): p is string => typeof p === "string") : [];
    const missing = pass.filter((p) => !env.has(p));
    if (missing.length > 0) return { error: `opts.pass names ${missing.join(", ")}, which the task's environment does not have` };
    for (const p of pass) values[p] = env.get(p) ?? "";
    const named = Array.isArray(o["artifacts"]) ? (o["artifacts"] as unknown[]) : [];
    const inputs = handedOver(c.instance?.artifact !== undefined ? [...named, c.instance.artifact] : named, c.upstream);
    if ("error" in inputs) return inputs;
    if (inputs.artifacts.length > 0 && !this.hasTrigger(flow, typeof o["ver"] === "number" ? o["ver"] : undefined)) return { error: `flow ${flow} has no trigger, so no $FLOE_INPUTS/<trigger>/ to find the handed-over artifacts in` };
    const ver = o["ver"];
    const trigger = o["trigger"];
    return {
      flow,
      ...(typeof ver === "number" ? { ver } : {}),
      ...(typeof trigger === "string" ? { trigger } : {}),
      values,
      // Beside the form's values, so that a form does not refuse it as a field it lacks.
      ...(c.instance !== undefined ? { opts: { item: c.instance.item } } : {}),
      // A flow without a data trigger starts from its first trigger (or none), as `floe run` starts it;
      // one with a data trigger starts from it, its form checking the values.
      anyTrigger: typeof trigger !== "string" && !this.hasDataTrigger(flow, typeof ver === "number" ? ver : undefined),
      by: `run ${c.parent.ref.run} (task ${c.node.id})`,
      parent: { run: c.parent.ref.run, node: c.node.id, ...(c.instance !== undefined ? { instance: c.instance.index } : {}), depth },
      ...(inputs.artifacts.length > 0 ? { inputs: inputs.artifacts } : {}),
    };
  }

  /** The task was stopped before its child ended. */
  private async stopped(c: ChildCall, child: string): Promise<TaskResult> {
    const why = errorMessage(c.signal.reason ?? "stopped");
    if (!this.d.runningHere(c.parent.ref.run)) {
      // The host stops or stood down: the child runs on, and the resumed parent re-attaches.
      return { status: -1, reason: `${why}; child run ${child} left running for the resumed run`, outputs: {} };
    }
    let note = "cancelled";
    try {
      await this.d.cancel(child, `parent run ${c.parent.ref.run} (${why})`);
    } catch (e) {
      const err = coerceError(e);
      note = `not cancelled: ${err.message}`;
    }
    const end = await this.waitForEnd(child, AbortSignal.timeout(CANCEL_WAIT_MS));
    if (end !== undefined && end.result !== "cancelled") note = `ended ${end.result ?? "?"}`;
    c.line(`child run ${child} ${note}`);
    return { status: -1, reason: `${why}; child run ${child} ${note}`, outputs: {} };
  }

  /** The child's end, from the bus or, if an event was missed, the summary; undefined when `signal` aborted first. */
  private waitForEnd(child: string, signal: AbortSignal): Promise<RunSummary | undefined> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (s: RunSummary | undefined): void => {
        if (done) return;
        done = true;
        this.unwatch(child, finish);
        clearInterval(timer);
        signal.removeEventListener("abort", aborted);
        resolve(s);
      };
      this.watch(child, finish);
      const look = (): void => {
        this.d.summary(child).then(
          (s) => (s?.state === "archived" ? finish(s) : undefined),
          (e: unknown) => this.d.log.debug({ err: coerceError(e), run: child }, "could not look at a child run"),
        );
      };
      const timer = setInterval(look, POLL_MS);
      const aborted = (): void => finish(undefined);
      signal.addEventListener("abort", aborted, { once: true });
      if (signal.aborted) aborted();
      else look();
    });
  }

  /**
   * One subscription to the bus for every child waited for here, made while there is one:
   * a run's end wakes the waiters of that run only (one map lookup per event, however many
   * children are waited for).
   */
  private watch(child: string, fn: (s: RunSummary) => void): void {
    this.unsubscribe ??= this.d.bus.subscribe((ev) => {
      if (ev.type !== "run" || ev.summary.state !== "archived") return;
      for (const w of [...(this.waiters.get(ev.summary.ref.run) ?? [])]) w(ev.summary);
    });
    const set = this.waiters.get(child) ?? new Set();
    set.add(fn);
    this.waiters.set(child, set);
  }

  private unwatch(child: string, fn: (s: RunSummary) => void): void {
    const set = this.waiters.get(child);
    set?.delete(fn);
    if (set?.size === 0) this.waiters.delete(child);
    if (this.waiters.size === 0) {
      this.unsubscribe?.();
      this.unsubscribe = undefined;
    }
  }


  private async children(run: string): Promise<Record<string, string>> {
    const v = await this.d.state.getValue(childrenKey(run));
    if (v === undefined || v === "") return {};
    try {
      const x: unknown = JSON.parse(v);
      if (x === null || typeof x !== "object" || Array.isArray(x)) return {};
      return Object.fromEntries(Object.entries(x).filter((e): e is [string, string] => typeof e[1] === "string"));
    } catch {
      return {};
    }
  }

  /** Adds a child to its parent's map in the shared state (for a requeued parent, and for parentEnded()). */
  private remember(run: string, slot: string, child: string): Promise<void> {
    const before = this.writing.get(run) ?? Promise.resolve();
    const next = before.then(async () => {
      const map = await this.children(run);
      await this.d.state.setValue(childrenKey(run), JSON.stringify({ ...map, [slot]: child }));
    });
    const settled = next.catch(() => undefined);
    this.writing.set(run, settled);
    void settled.then(() => {
      if (this.writing.get(run) === settled) this.writing.delete(run);
    });
    return next;
  }
}

function failed(error: string): TaskResult {
  return { status: -1, error, outputs: {} };
}

/** A flow task's result: the child's outputs, and its artifacts as the task's. */
export type ChildResult = TaskResult & { readonly artifacts?: readonly ArtifactRef[] };

/** The task's result from its child's end: good → 0; bad, cancelled, lost → 1, with the child named. */
function resultOf(child: string, end: RunSummary): ChildResult {
  const outputs = end.outputs ?? {};
  const artifacts = end.artifacts !== undefined && end.artifacts.length > 0 ? { artifacts: end.artifacts } : {};
  if (end.result === "good") return { status: 0, outputs, ...artifacts };
  return { status: 1, reason: `child run ${child as RunId} of flow ${end.ref.flow} ended ${end.result ?? "?"}${end.reason !== undefined ? `: ${end.reason}` : ""}`, outputs, ...artifacts };
}

/**
 * What `opts.artifacts` hands over, from the artifacts of the run's ended nodes: `node` all
 * of that node's, `node/name` one. One name with different bytes from two nodes can not be
 * handed over under it (the child finds them all in one folder).
 */
function handedOver(refs: unknown, upstream: readonly NodeArtifacts[]): { artifacts: ArtifactRef[] } | { error: string } {
  const wanted = Array.isArray(refs) ? refs.filter((r): r is string => typeof r === "string") : [];
  const byName = new Map<string, ArtifactRef>();
  for (const ref of wanted) {
    const [node, name] = ref.split("/", 2) as [string, string | undefined];
    const of = upstream.find((n) => n.node === node)?.artifacts ?? [];
    const picked = name === undefined ? of : of.filter((a) => a.name === name);
    if (picked.length === 0) return { error: `opts.artifacts names ${ref}, which ${name === undefined ? `node "${node}" did not leave (no artifacts)` : `no ended node left (node "${node}" has ${of.map((a) => a.name).join(", ") || "none"})`}` };
    for (const a of picked) {
      const had = byName.get(a.name);
      if (had !== undefined && had.sha256 !== a.sha256) return { error: `opts.artifacts hands over two different files named "${a.name}"; the child finds them in one folder` };
      byName.set(a.name, a);
    }
  }
  return { artifacts: [...byName.values()] };
}

/** Waits for `ready`; false if `signal` aborted first. */
function whenReady(ready: Promise<void>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const aborted = (): void => resolve(false);
    signal.addEventListener("abort", aborted, { once: true });
    void ready.then(() => {
      signal.removeEventListener("abort", aborted);
      resolve(true);
    });
  });
}
