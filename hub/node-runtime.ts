/**
 * The live state of one node in one run, and how it is rebuilt from the node's status
 * lines after a restart.
 */
import { readForm } from "../flows/forms.js";
import type { FlowNode } from "../flows/model.js";
import type { RunEventRec, StatusLine } from "./run-record.js";
import { ended, type InstanceRuntime } from "./fan-out.js";
import type { ArtifactRef, NodeState, NodeStatus, RunId } from "./types.js";
import { now } from "../store/clock.js";

export class NodeRuntime {
  state: NodeState = "waiting";
  attempts = 0;
  startedAt: number | undefined;
  endedAt: number | undefined;
  exitCode: number | undefined;
  tag: string | undefined;
  reason: string | undefined;
  logLines = 0;
  abort: AbortController | undefined;
  /** The process groups of the attempt running now (one per running for-each instance), once they started. */
  readonly groups = new Set<number>();
  /** A for-each task: its instances, once it first started (hub/fan-out.ts). */
  instances: InstanceRuntime[] | undefined;
  /** Data nodes: open for input. */
  enabled = false;
  values: Record<string, string> = {};
  /** Data nodes: who gave the last input (an approval records who gave it). */
  givenBy: string | undefined;
  /** Merges: waits received. */
  readonly received = new Map<string, RunEventRec>();
  fired = false;
  /** The event it emitted when it finished (for replay after a restart). */
  finishedEvent: RunEventRec | undefined;
  /**
   * Tasks that run something: the `key=value` pairs its last end recorded (its event's
   * values, so its `done` status line keeps them across a restart). Not a data node's:
   * its values are the form's, shown as `values`.
   */
  outputs: Readonly<Record<string, string>> | undefined;
  /** Tasks: the artifacts its last end recorded (its event's, kept in its `done` status line). */
  artifacts: readonly ArtifactRef[] | undefined;
  /** Set by restore(): the event of an attempt that was running when the host stopped. */
  interruptedBy: RunEventRec | undefined;
  /** Whether the node has acted in this run (it has status lines). */
  touched = false;
  /**
   * A flow task: the child runs started and not yet taken as a result, by fan-out instance
   * (-1: none), so that a restart re-attaches to them (child-runs.ts); and the last one of
   * each, shown (`child`, an instance's `child`).
   */
  readonly children = new Map<number, string>();
  readonly shown = new Map<number, string>();

  constructor(
    readonly node: FlowNode,
    /** The run attempt this node runs in (RunRecord.attempt); its `attempts` count tries within it. */
    readonly runAttempt: number,
  ) {
    if (node.class === "trigger") this.state = "good";
  }

  beginAttempt(_ev: RunEventRec): void {
    this.touched = true;
    this.attempts++;
    this.state = "running";
    this.startedAt = now();
    this.endedAt = undefined;
    this.exitCode = undefined;
    this.reason = undefined;
    this.tag = undefined;
  }

  enable(_ev: RunEventRec): void {
    this.touched = true;
    this.enabled = true;
    this.state = "waiting";
    this.startedAt ??= now();
  }

  finish(state: "good" | "bad" | "cancelled", tag: string | undefined, exitCode: number | undefined, reason: string | undefined, ev: RunEventRec | undefined): void {
    this.touched = true;
    this.state = state;
    this.enabled = false;
    this.endedAt = now();
    this.tag = tag;
    this.exitCode = exitCode;
    this.reason = reason;
    this.finishedEvent = ev;
    if (ev !== undefined && writesOutputs(this.node)) this.outputs = ev.values;
    this.artifacts = ev?.artifacts;
  }

  /** When the run has ended: a node that never acted (or a merge that never fired) was skipped. */
  skipIfUnreached(): boolean {
    if (this.state !== "waiting" || this.node.class === "trigger") return false;
    this.state = "skipped";
    return true;
  }

  /** Rebuilds the node from its status lines (oldest first). */
  restore(lines: readonly StatusLine[]): void {
    let open: RunEventRec | undefined;
    for (const l of lines) {
      this.touched = true;
      switch (l.t) {
        case "start":
          this.attempts = l.attempt;
          this.state = "running";
          this.startedAt = l.at;
          open = l.event;
          break;
        case "pgid":
          break;
        case "retry":
          // A retry runs again the instances that did not end good; the good ones stand.
          this.forgetFailedInstances();
          this.children.clear();
          break;
        case "inst":
          this.restoreInstance(l);
          break;
        case "child":
          this.children.set(l.instance ?? -1, l.run);
          this.shown.set(l.instance ?? -1, l.run);
          break;
        case "done":
          open = undefined;
          this.children.clear();
          this.state = l.state;
          this.endedAt = l.at;
          this.tag = l.tag;
          this.exitCode = l.exitCode;
          this.reason = l.reason;
          this.enabled = false;
          if (l.event !== undefined && l.state !== "cancelled") {
            this.finishedEvent = l.event;
            if (writesOutputs(this.node)) this.outputs = l.event.values;
            this.artifacts = l.event.artifacts;
          }
          break;
        case "enabled":
          this.enabled = true;
          this.state = "waiting";
          this.startedAt ??= l.at;
          break;
        case "values":
          this.values = { ...this.values, ...l.values };
          if (l.by !== undefined) this.givenBy = l.by;
          break;
        case "wait":
          this.received.set(l.tag, l.event);
          break;
        case "fired":
          this.fired = true;
          this.state = "good";
          this.endedAt = l.at;
          break;
      }
    }
    this.interruptedBy = open;
  }

  /** Before a retry: the instances that ended other than good run again. */
  forgetFailedInstances(): void {
    if (this.instances === undefined) return;
    for (const i of this.instances) {
      if (i.status.state === "good" || !ended(i.status.state)) continue;
      i.status = { index: i.status.index, item: i.status.item, name: i.status.name, state: "waiting" };
      i.outputs = {};
      i.artifacts = undefined;
    }
  }

  private restoreInstance(l: Extract<StatusLine, { t: "inst" }>): void {
    this.instances ??= [];
    const { index, item, name } = l;
    const status = {
      index,
      item,
      name,
      state: l.state,
      ...(l.exitCode !== undefined ? { exitCode: l.exitCode } : {}),
      ...(l.reason !== undefined ? { reason: l.reason } : {}),
      ...(l.state === "running" ? { startedAt: l.at } : { startedAt: this.instances[index]?.status.startedAt ?? l.at, endedAt: l.at }),
    };
    this.instances[index] = { status, outputs: l.outputs ?? {}, ...(l.artifacts !== undefined ? { artifacts: l.artifacts } : {}) };
  }

  /** Process groups recorded for attempts that never finished (to kill after a crash). */
  static openGroups(lines: readonly StatusLine[]): number[] {
    const groups: number[] = [];
    for (const l of lines) {
      if (l.t === "pgid") groups.push(l.pgid);
      if (l.t === "done" || l.t === "retry") groups.length = 0;

    }
    return groups;
  }

  status(): NodeStatus {
    const n = this.node;
    const base = {
      id: n.id,
      name: n.name,
      class: n.class,
      type: n.type,
      state: this.state,
      attempts: this.attempts,
      runAttempt: this.runAttempt,
      logLines: this.logLines,
      ...(this.startedAt !== undefined ? { startedAt: this.startedAt } : {}),
      ...(this.endedAt !== undefined ? { endedAt: this.endedAt } : {}),
      ...(this.exitCode !== undefined ? { exitCode: this.exitCode } : {}),
      ...(this.tag !== undefined ? { tag: this.tag } : {}),
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
      ...(this.outputs !== undefined && Object.keys(this.outputs).length > 0 ? { outputs: this.outputs } : {}),
      ...(this.shown.has(-1) ? { child: this.shown.get(-1) as RunId } : {}),
      ...(this.artifacts !== undefined && this.artifacts.length > 0 ? { artifacts: this.artifacts } : {}),
      // A flow task's instance shows its child run (child-runs.ts).
      ...(this.instances !== undefined ? { instances: this.instances.filter((i) => i !== undefined).map((i) => (this.shown.has(i.status.index) ? { ...i.status, child: this.shown.get(i.status.index) as string } : i.status)) } : {}),
    };
    if (n.class === "merge") return { ...base, waits: Object.fromEntries(n.wait.map((w) => [w, this.received.has(w)])) };
    if (n.class === "task" && n.type === "data") {
      return { ...base, enabled: this.enabled, fields: readForm(n.opts).form?.fields ?? [], values: this.values, ...(this.givenBy !== undefined ? { by: this.givenBy } : {}) };
    }
    return base;
  }
}

/** Whether a node's end event carries outputs (`$FLOE_OUTPUT`): a task that runs something. */
function writesOutputs(n: FlowNode): boolean {
  return n.class === "task" && n.type !== "data" && n.type !== "end";
}
