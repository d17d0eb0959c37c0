/**
 * The run's public shape: references, states, summaries and the events that describe a
 * run's life. Wire-visible types carry a version field and are checked on arrival.
 */
import type { FormField } from "../flows/forms.js";

export type RunId = string & { readonly __brand: "RunId" };
export type HostName = string & { readonly __brand: "HostName" };

/** The globally unique reference of a run. */
export interface RunRef {
  readonly flow: string;
  readonly ver: number;
  readonly run: RunId;
  /** The host that adopted the trigger. */
  readonly adoptedBy: HostName;
  /** The host executing it, once dispatched. */
  readonly execHost?: HostName;
}

export type RunState = "pending" | "active" | "archived";
export type RunResult = "good" | "bad" | "cancelled" | "lost";
export type NodeState = "waiting" | "running" | "good" | "bad" | "skipped" | "cancelled";

/** What started a run. */
export interface TriggerInfo {
  readonly id: string;
  readonly type: string;
  /** Values of the trigger: its opts, then form values / webhook fields over them. */
  readonly values: Readonly<Record<string, unknown>>;
  /** Who or what started it. */
  readonly by?: string;
}

/** A file a task left in `$FLOE_ARTIFACTS`, kept content-addressed (hub/task-artifacts.ts). */
export interface ArtifactRef {
  /** A plain file name (no `/`, not `.` or `..`). */
  readonly name: string;
  readonly size: number;
  /** Lower-case hex SHA-256 of its bytes: the object's name in the store. */
  readonly sha256: string;
}

export interface NodeStatus {
  readonly id: string;
  readonly name: string;
  readonly class: "trigger" | "task" | "merge";
  readonly type: string;
  readonly state: NodeState;
  /**
   * Tries of this node's task within the run attempt `runAttempt`: 1 for the first, more for
   * its retries and for a try cut short by a restart of its host. A requeued run (a new run
   * attempt, on another host) counts its nodes' tries afresh.
   */
  readonly attempts: number;
  /**
   * The run attempt (RunSummary.attempt) this status is of. Statuses recorded before it
   * existed count as attempt 1.
   */
  readonly runAttempt: number;
  readonly startedAt?: number;
  readonly endedAt?: number;
  readonly exitCode?: number;
  /** The event tag it emitted. */
  readonly tag?: string;
  readonly reason?: string;
  /** Merges: which waits arrived. */
  readonly waits?: Readonly<Record<string, boolean>>;
  /** Data nodes: open for input. */
  readonly enabled?: boolean;
  readonly fields?: readonly FormField[];
  readonly values?: Readonly<Record<string, string>>;
  /** Data nodes: who gave the input. */
  readonly by?: string;
  /**
   * Tasks: the `key=value` pairs it wrote to `$FLOE_OUTPUT`, once it ended (absent when it
   * wrote none). Later tasks of the run attempt see them as `FLOE_OUT_<NODE>_<KEY>`.
   */
  readonly outputs?: Readonly<Record<string, string>>;
  /** Tasks: the artifacts its end recorded (absent when it left none), by name. */
  readonly artifacts?: readonly ArtifactRef[];
  /** Lines of output so far. */
  readonly logLines: number;
  /** A `type: flow` task: the child run it started last (hub/child-runs.ts). */
  readonly child?: RunId;
  /** A for-each task: its instances, in item order (hub/fan-out.ts). */
  readonly instances?: readonly InstanceStatus[];
}

/** A child run's parent: the run and its `type: flow` node that started it (the fan-out instance, if one). */
export interface ParentLink {
  readonly run: RunId;
  readonly node: string;
  readonly instance?: number;
}

/** One instance of a for-each task. */
export interface InstanceStatus {
  readonly index: number;
  /** FLOE_ITEM: the listed value, or the artifact's path. */
  readonly item: string;
  /** FLOE_ITEM_NAME: the listed value, or the artifact's name. */
  readonly name: string;
  readonly state: NodeState;
  readonly exitCode?: number;
  readonly reason?: string;
  readonly startedAt?: number;
  readonly endedAt?: number;
  /** A `type: flow` instance: its child run. */
  readonly child?: string;
}

/** Which run a re-run re-runs, and from which node (absent: from the start). */
export interface RerunLink {
  readonly run: RunId;
  readonly from?: string;
  /** Set on a re-run with the flow's then current definition (tainted runs): its hash. */
  readonly def?: string;
}

export interface RunSummary {
  readonly ref: RunRef;
  readonly state: RunState;
  readonly result?: RunResult;
  readonly reason?: string;
  /** Why a pending run waits. */
  readonly waiting?: string;
  /**
   * The run's attempt: 1, and one more each time the run is requeued after its host was lost
   * (`on-host-loss: requeue`); each attempt runs the flow afresh on one host.
   */
  readonly attempt: number;
  readonly trigger: TriggerInfo;
  readonly adoptedAt: number;
  readonly startedAt?: number;
  readonly endedAt?: number;
  /** The content hash of the flow definition the run was adopted with (hub/on-update.ts). */
  readonly def?: string;
  /** A paused run starts no new task until it is resumed (hub/pause.ts); who paused it, when. */
  readonly paused?: boolean;
  readonly pausedBy?: string;
  readonly pausedAt?: number;
  /** A re-run: the run it re-runs, and the node it started from (hub/rerun.ts). */
  readonly rerunOf?: RerunLink;
  /** The re-runs made of this run, oldest first. */
  readonly reruns?: readonly RerunLink[];
  /** A child run (hub/child-runs.ts): the run and node that started it. */
  readonly parent?: ParentLink;
  /** A child run that ended: its tasks' outputs, later ones winning (its parent task's outputs). */
  readonly outputs?: Readonly<Record<string, string>>;
  /** A child run that ended: its nodes' artifacts, by name, later ones winning (its parent task's artifacts). */
  readonly artifacts?: readonly ArtifactRef[];
}

export interface RunDetail extends RunSummary {
  readonly name: string;
  readonly nodes: readonly NodeStatus[];
}

/** A line of a node's output. Lines are numbered from 1 within one run attempt. */
export interface LogLine {
  /** The run attempt it was printed in; lines written before it was recorded count as attempt 1. */
  readonly attempt: number;
  readonly seq: number;
  readonly at: number;
  readonly text: string;
  readonly stream: "out" | "err" | "sys";
  /** A for-each task's line: the index of the instance that printed it. */
  readonly instance?: number;
}

/** Events that describe runs, for live views (dashboard, SSE, `floe run`). */
export type RunEvent =
  | { readonly v: 1; readonly type: "run"; readonly summary: RunSummary }
  | { readonly v: 1; readonly type: "node"; readonly ref: RunRef; readonly node: NodeStatus }
  | { readonly v: 1; readonly type: "log"; readonly ref: RunRef; readonly node: string; readonly line: LogLine };

export function runKey(ref: Pick<RunRef, "flow" | "ver">): string {
  return `${ref.flow}/${ref.ver}`;
}
