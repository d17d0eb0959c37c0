/**
 * One active run: routes its events, in order, to the nodes that listen to them; runs
 * tasks through the agent; fires merges once; opens data forms; and ends the run by the
 * rules of DESIGN §4 step 6. Every state change is appended to the run's journal
 * before it is announced, so a restarted host can pick the run up where it was.
 */
import { formatDuration } from "../flows/duration.js";
import { readForm } from "../flows/forms.js";
import type { MergeNode, TaskNode } from "../flows/model.js";
import { matchTag, mergeTag, taskTag, TRIGGER_GOOD } from "../flows/tags.js";
export type { ExecutorDeps } from "./executor-deps.js";
import { checkValues, missingFields, withDefaults } from "./data-input.js";
import { errorMessage, FloeError } from "./errors.js";
import { NodeRuntime } from "./node-runtime.js";
import type { ReplayedNode, RunEventRec, RunRecord, StatusLine } from "./run-record.js";
import { TaskWork, type TaskOutcome } from "./task-work.js";
import type { ExecutorDeps } from "./executor-deps.js";
import type { ArtifactRef, LogLine, NodeStatus, RunResult } from "./types.js";
import { now } from "../store/clock.js";

/**
 * How long an output line may wait for its fdatasync. Lines are written at once (readers
 * and a restarted host see them), durable within this, and always before their task's end
 * is recorded: a short task's lines share the sync of its end.
 */
const LOG_SYNC_WITHIN_MS = 1000;

export class RunExecutor {
  private readonly nodes = new Map<string, NodeRuntime>();
  private readonly queue: RunEventRec[] = [];
  private draining = false;
  private ended = false;
  private endPromise: Promise<void> | undefined;
  private readonly runAbort = new AbortController();
  private readonly running = new Set<Promise<void>>();
  /** Nodes whose processes printed since this executor started: they have a log to flush at their end. */
  private readonly printed = new Set<string>();
  private dangling: RunEventRec[] = [];
  private runTimer: NodeJS.Timeout | undefined;
  /** Task ends recorded but not yet on disk (their events wait for that). */
  private inflight = 0;
  /** Paused (hub/pause.ts): tasks due to start wait in `held` until the run is resumed. */
  private paused: boolean;
  private held: { node: TaskNode; ev: RunEventRec; note?: string }[] = [];
  /** Executions, child runs and fan-outs of this run's tasks (task-work.ts). */
  private readonly work: TaskWork;

  constructor(
    readonly record: RunRecord,
    private readonly deps: ExecutorDeps,
  ) {
    for (const n of [...record.flow.triggers, ...record.flow.tasks]) this.nodes.set(n.id, new NodeRuntime(n, record.attempt));
    // A child run's trigger has the artifacts its parent handed over: its tasks find them under $FLOE_INPUTS/<trigger>/.
    const trigger = this.nodes.get(record.trigger.id);
    if (record.inputs !== undefined && trigger?.node.class === "trigger") trigger.artifacts = record.inputs;
    this.paused = record.paused !== undefined;
    this.work = new TaskWork({
      record,
      deps,
      nodes: this.nodes,
      ended: () => this.ended,
      journal: (node, line, o) => this.journal(node, line, o),
      line: (node, l, instance) => this.line(node, l, instance),
      sysLine: (node, text, instance) => this.sysLine(node, text, instance),
      durable: (node) => this.durable(node),
      publishNode: (id) => this.publishNode(id),
    });
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Starts a fresh run: emits trigger.good with the trigger's values (a re-run: after its replay). */
  start(): void {
    this.armRunTimeout(this.record.startedAt ?? now());
    if (this.record.replay !== undefined) {
      this.replay(this.record.replay);
      return;
    }
    // Trigger values reach every task of the run (task-request.ts), so the event carries none of its own.
    this.enqueue({ tag: TRIGGER_GOOD, good: true, opts: this.record.trigger.values, values: {} });
  }

  /**
   * Continues a run after a restart from its nodes' status lines: finished nodes stay
   * finished, tasks that were running run again as a new attempt, and events whose
   * listeners never started are delivered again.
   */
  resume(statuses: ReadonlyMap<string, readonly StatusLine[]>, note = "restarted after the host stopped", logLines: ReadonlyMap<string, number> = new Map()): void {
    this.armRunTimeout(this.record.startedAt ?? now());
    const emitted: { at: number; ev: RunEventRec }[] = [{ at: 0, ev: { tag: TRIGGER_GOOD, good: true, opts: this.record.trigger.values, values: {} } }];
    const rerun: { node: TaskNode; ev: RunEventRec }[] = [];
    for (const [id, lines] of statuses) {
      const rt = this.nodes.get(id);
      if (rt === undefined) continue;
      rt.restore(lines);
      // Its output so far keeps its numbers; what it prints from here on follows them.
      rt.logLines = logLines.get(id) ?? 0;
      if (rt.finishedEvent !== undefined) emitted.push({ at: rt.endedAt ?? 0, ev: rt.finishedEvent });
      if (rt.interruptedBy !== undefined && rt.node.class === "task") rerun.push({ node: rt.node, ev: rt.interruptedBy });
    }
    emitted.sort((a, b) => a.at - b.at);
    for (const { node, ev } of rerun) this.startTask(node, ev, note);
    for (const { ev } of emitted) this.route(ev, true);
    this.checkQuiescent();
  }

  /**
   * From now on no task starts: running ones finish and their events are routed; the tasks
   * those events would start wait, shown as waiting with the reason, until unpause().
   */
  pause(): void {
    this.paused = true;
  }

  /** Starts the tasks held while paused, in the order they were due. */
  unpause(): void {
    if (!this.paused) return;
    this.paused = false;
    const due = this.held;
    this.held = [];
    for (const { node, ev, note } of due) if (!this.ended) this.startTask(node, ev, note);
    this.checkQuiescent();
  }

  /**
   * A re-run from a node (rerun.ts): the old run's ends of the nodes leading to it are
   * recorded here as this run's (so a restart resumes from them) and their events delivered
   * as on a resume, so the nodes they reached stay untouched and execution starts where the
   * re-run starts. Their outputs reach later tasks as if they had just run.
   */
  private replay(nodes: readonly ReplayedNode[]): void {
    const from = this.record.rerunOf;
    const note = `replayed from run ${from?.run ?? "?"} (re-run from ${from?.from ?? "the start"})`;
    const emitted: RunEventRec[] = [{ tag: TRIGGER_GOOD, good: true, opts: this.record.trigger.values, values: {} }];
    for (const n of nodes) {
      const rt = this.nodes.get(n.id);
      if (rt === undefined) continue;
      const ev: RunEventRec = { tag: n.tag, good: n.state === "good", opts: {}, values: n.values, ...(n.artifacts !== undefined ? { artifacts: n.artifacts } : {}) };
      const at = now();
      if (rt.node.class === "merge") {
        // Its waits as the old run had them: the events of the replayed nodes it waited for.
        for (const w of rt.node.wait) {
          const got = nodes.find((x) => x.tag === w);
          if (got === undefined) continue;
          const waited: RunEventRec = { tag: got.tag, good: got.state === "good", opts: {}, values: got.values };
          rt.received.set(w, waited);
          this.journal(n.id, { t: "wait", at, tag: w, event: waited });
        }
        rt.fired = true;
        rt.touched = true;
        rt.state = "good";
        rt.endedAt = at;
        rt.finishedEvent = ev;
        this.journal(n.id, { t: "fired", at });
      } else {
        rt.finish(n.state, n.tag, n.exitCode, note, ev);
        this.journal(n.id, { t: "done", at, state: n.state, tag: n.tag, ...(n.exitCode !== undefined ? { exitCode: n.exitCode } : {}), reason: note, event: ev });
      }
      this.publishNode(n.id);
      emitted.push(ev);
    }
    for (const ev of emitted) this.route(ev, true);
    this.checkQuiescent();
  }

  /** Process groups of the tasks running now (to kill them without waiting, see Hub.standDown). */
  runningGroups(): number[] {
    const out: number[] = [];
    for (const rt of this.nodes.values()) out.push(...rt.groups);
    return out;
  }

  /** Ends the run now. */
  cancel(reason: string): Promise<void> {
    return this.end("cancelled", reason);
  }

  /** Input for a data node; accumulates values; completes it when every field is there. */
  /** `by`: who gave the input (kept with the node: an approval says who gave it). */
  postData(nodeId: string, values: unknown, reject?: string, by?: string): NodeStatus {
    const rt = this.nodes.get(nodeId);
    if (rt === undefined) throw new FloeError("E_NODE_NOT_FOUND", `run ${this.record.ref.run} has no node "${nodeId}"`);
    if (rt.node.class !== "task" || rt.node.type !== "data") throw new FloeError("E_NOT_A_DATA_NODE", `node "${nodeId}" is a ${rt.node.class === "task" ? rt.node.type : rt.node.class} node, not a data node`);
    if (this.ended) throw new FloeError("E_RUN_ENDED", `run ${this.record.ref.run} has ended`);
    if (!rt.enabled) throw new FloeError("E_DATA_NOT_ENABLED", `data node "${nodeId}" is not waiting for input${rt.state === "waiting" ? " yet" : ""}`);
    const form = readForm(rt.node.opts).form;
    const checked = checkValues(form, values);
    const node = rt.node;
    if (by !== undefined) {
      rt.givenBy = by;
      this.journal(node.id, { t: "values", at: now(), values: {}, by });
    }
    if (reject !== undefined) {
      this.finishTask(node, { state: "bad", tag: taskTag(node.id, "bad"), reason: `rejected: ${reject || "no reason given"}`, values: { ...rt.values, ...checked } });
      return this.status(node.id);
    }
    rt.values = { ...rt.values, ...checked };
    this.journal(node.id, { t: "values", at: now(), values: checked });
    const missing = form === undefined ? [] : missingFields(form, rt.values);
    if (missing.length === 0) {
      this.finishTask(node, { state: "good", tag: taskTag(node.id, "good"), values: withDefaults(form, rt.values) });
    } else {
      this.publishNode(node.id);
    }
    return this.status(node.id);
  }

  status(id: string): NodeStatus {
    const rt = this.nodes.get(id);
    if (rt === undefined) throw new FloeError("E_NODE_NOT_FOUND", `no node "${id}"`);
    return rt.status();
  }

  statuses(): NodeStatus[] {
    return [...this.nodes.values()].map((n) => n.status());
  }

  // --- routing ---------------------------------------------------------------------

  private enqueue(ev: RunEventRec): void {
    this.queue.push(ev);
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.ended) this.route(this.queue.shift() as RunEventRec, false);
    } finally {
      this.draining = false;
    }
    this.checkQuiescent();
  }

  /** Delivers one event. On replay, nodes that already acted on it are left alone. */
  private route(ev: RunEventRec, replay: boolean): void {
    if (this.ended) return;
    const listeners = matchTag(this.record.flow, ev.tag);
    if (listeners.length === 0) {
      if (!ev.good) {
        void this.end("bad", `${ev.tag} has no listener`);
        return;
      }
      this.dangling.push(ev);
      return;
    }
    for (const n of listeners) {
      if (this.ended) return;
      const rt = this.nodes.get(n.id) as NodeRuntime;
      if (n.class === "merge") {
        this.mergeEvent(n, rt, ev, replay);
        continue;
      }
      if (n.type === "end") {
        // Even on replay: a host that stopped after reaching the end node still ends the run so.
        if (!rt.touched) {
          rt.finish(ev.good ? "good" : "bad", undefined, undefined, `reached by ${ev.tag}`, undefined);
          this.journal(n.id, { t: "done", at: rt.endedAt ?? now(), state: rt.state === "good" ? "good" : "bad", tag: ev.tag, reason: rt.reason ?? "" });
          this.publishNode(n.id);
        }
        void this.end(ev.good ? "good" : "bad", `end node "${n.id}" reached by ${ev.tag}`);
        return;
      }
      if (replay && rt.touched) continue;
      if (n.type === "data") {
        rt.enable(ev);
        this.journal(n.id, { t: "enabled", at: now(), event: ev });
        this.publishNode(n.id);
        continue;
      }
      if (rt.state === "running") {
        this.sysLine(n.id, `already running; ${ev.tag} ignored`);
        continue;
      }
      this.startTask(n, ev);
    }
  }

  private mergeEvent(n: MergeNode, rt: NodeRuntime, ev: RunEventRec, replay: boolean): void {
    if (rt.fired || rt.received.has(ev.tag)) return;
    rt.received.set(ev.tag, ev);
    if (!replay || !rt.touched) this.journal(n.id, { t: "wait", at: now(), tag: ev.tag, event: ev });
    const ready = n.type === "any" ? rt.received.size >= 1 : n.wait.every((w) => rt.received.has(w));
    if (!ready) {
      rt.state = "waiting";
      this.publishNode(n.id);
      return;
    }
    rt.fired = true;
    rt.state = "good";
    rt.endedAt = now();
    this.journal(n.id, { t: "fired", at: rt.endedAt });
    this.publishNode(n.id);
    let opts: Record<string, unknown> = {};
    let values: Record<string, string> = {};
    for (const r of rt.received.values()) {
      opts = { ...opts, ...r.opts };
      values = { ...values, ...r.values };
    }
    this.enqueue({ tag: mergeTag(n.id), good: true, opts, values });
  }

  // --- tasks -----------------------------------------------------------------------

  private startTask(node: TaskNode, ev: RunEventRec, note?: string): void {
    const rt = this.nodes.get(node.id) as NodeRuntime;
    if (this.paused) {
      this.hold(node, rt, ev, note);
      return;
    }
    rt.beginAttempt(ev);
    this.journal(node.id, { t: "start", at: rt.startedAt ?? now(), attempt: rt.attempts, event: ev });
    this.publishNode(node.id);
    if (note !== undefined) this.sysLine(node.id, note);
    const p = this.runAttempt(node, rt, ev).catch((e: unknown) => {
      this.deps.log.error({ err: e, node: node.id }, "task attempt failed unexpectedly");
      this.finishTask(node, { state: "bad", tag: taskTag(node.id, "error"), reason: `internal error: ${errorMessage(e)}`, values: {} });
    });
    this.running.add(p);
    void p.finally(() => {
      this.running.delete(p);
      this.checkQuiescent();
    });
  }

  /** A task due to start while the run is paused: it waits, marked so, for unpause(). */
  private hold(node: TaskNode, rt: NodeRuntime, ev: RunEventRec, note?: string): void {
    if (this.held.some((h) => h.node.id === node.id)) {
      // As for a running task: a second event for it while it waits starts nothing more.
      this.sysLine(node.id, `already waiting for the resume; ${ev.tag} ignored`);
      return;
    }
    this.held.push({ node, ev, ...(note !== undefined ? { note } : {}) });
    rt.state = "waiting";
    rt.reason = "paused: starts when the run is resumed";
    this.publishNode(node.id);
  }

  private async runAttempt(node: TaskNode, rt: NodeRuntime, ev: RunEventRec): Promise<void> {
    // The start is on disk before the process exists: after a crash we know to look for it.
    await this.durable(node.id);
    if (this.ended) return;
    if (this.deps.mayStartTask !== undefined && !(await this.deps.mayStartTask(this.runAbort.signal))) return;
    if (this.ended) return;
    const taskAbort = new AbortController();
    rt.abort = taskAbort;
    const signals = [this.runAbort.signal, taskAbort.signal];
    let timer: NodeJS.Timeout | undefined;
    if (node.timeoutMs !== undefined) {
      const ms = node.timeoutMs;
      timer = setTimeout(() => taskAbort.abort(new Error(`timed out after ${formatDuration(ms)}`)), ms);
    }
    let result: TaskOutcome;
    try {
      const signal = AbortSignal.any(signals);
      result = node.forEach !== undefined ? await this.work.fanOut(node, rt, ev, signal) : await this.work.execute(node, rt, ev, signal);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      rt.abort = undefined;
    }
    if (this.ended) return; // the run ended while it ran; end() recorded it
    // A task that writes a secret to $FLOE_OUTPUT: its outputs are kept and passed on masked.
    const outputs = this.deps.secrets.maskValues(result.outputs);
    let good: boolean;
    let tag: string;
    if (result.error !== undefined) {
      good = node.ignoreFail;
      tag = node.ignoreFail ? taskTag(node.id, "good") : taskTag(node.id, "error");
      this.sysLine(node.id, result.error);
    } else {
      good = node.ignoreFail || node.good.includes(result.status);
      tag = node.useStatus && !node.ignoreFail ? taskTag(node.id, result.status) : taskTag(node.id, good ? "good" : "bad");
    }
    const said = result.error ?? result.reason;
    const reason = said !== undefined ? this.deps.secrets.mask(said) : good ? undefined : `exit status ${result.status}`;
    const max = node.retries?.max ?? 0;
    if (!good && rt.attempts <= max) {
      const delayMs = (node.retries?.backoffMs ?? 1000) * 2 ** (rt.attempts - 1);
      this.journal(node.id, { t: "retry", at: now(), attempt: rt.attempts, delayMs, reason: reason ?? "failed" });
      this.sysLine(node.id, `try ${rt.attempts} failed (${reason ?? "failed"}); retry ${rt.attempts}/${max} in ${formatDuration(delayMs)}`);
      rt.forgetFailedInstances();
      rt.state = "waiting";
      rt.reason = `retry ${rt.attempts}/${max} in ${formatDuration(delayMs)}`;
      this.publishNode(node.id);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delayMs);
        this.runAbort.signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
      if (this.ended) return;
      if (this.paused) {
        // The retry is a new start: it waits for the resume like any other.
        this.hold(node, rt, ev);
        return;
      }
      rt.beginAttempt(ev);
      this.journal(node.id, { t: "start", at: rt.startedAt ?? now(), attempt: rt.attempts, event: ev });
      this.publishNode(node.id);
      return this.runAttempt(node, rt, ev);
    }
    this.finishTask(node, {
      state: good ? "good" : "bad",
      tag,
      exitCode: result.status,
      ...(reason !== undefined ? { reason } : {}),
      values: outputs,
      ...(result.artifacts !== undefined ? { artifacts: result.artifacts } : {}),
    });
  }

  /**
   * Records a task's end and emits its event, so that after a crash a listener never runs
   * for an end that was not recorded: the end is in the journal before the records of
   * whatever its event starts, and on disk no later than they are (below).
   */
  private finishTask(node: TaskNode, r: { state: "good" | "bad"; tag: string; exitCode?: number; reason?: string; values: Record<string, string>; artifacts?: readonly ArtifactRef[] }): void {
    if (this.ended) return;
    const rt = this.nodes.get(node.id) as NodeRuntime;
    const ev: RunEventRec = { tag: r.tag, good: r.state === "good", opts: {}, values: r.values, ...(r.artifacts !== undefined ? { artifacts: r.artifacts } : {}) };
    rt.finish(r.state, r.tag, r.exitCode, r.reason, ev);
    this.inflight++;
    this.journal(node.id, { t: "done", at: rt.endedAt ?? now(), state: r.state, tag: r.tag, ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}), ...(r.reason !== undefined ? { reason: r.reason } : {}), event: ev });
    this.publishNode(node.id);
    // The end record is not waited for: the run's journal is one append-only file, so the
    // sync that makes anything after it durable makes it durable too — and everything its
    // event leads to comes after it: a listening task's start record, synced before its
    // process starts; a merge's records; the run's end, which flushes the journal first.
    // A crash before that sync loses the end and what followed from it together, and the
    // task runs again. Only its output, in a file of its own, is waited for: on disk no
    // later than its end.
    const logged = this.printed.has(node.id) ? this.deps.openLog(node.id).flush() : Promise.resolve();
    logged
      .then(() => {
        this.inflight--;
        this.enqueue(ev);
      })
      .catch((e: unknown) => {
        this.inflight--;
        void this.end("bad", `could not save the output of "${node.id}": ${errorMessage(e)}`);
      });
  }

  /** Resolves when every status line of the node written so far is on disk (with the run's others: one journal). */
  private durable(_node: string): Promise<void> {
    return this.deps.journal.flush();
  }

  // --- ending ----------------------------------------------------------------------

  private checkQuiescent(): void {
    if (this.ended || this.draining || this.queue.length > 0 || this.running.size > 0 || this.inflight > 0 || this.held.length > 0) return;
    const open = [...this.nodes.values()].filter((n) => n.enabled);
    if (open.length > 0) return; // waiting for people
    const incomplete = [...this.nodes.values()].filter((n) => n.node.class === "merge" && !n.fired && n.received.size > 0);
    const bad = this.dangling.filter((e) => !e.good);
    if (incomplete.length > 0) {
      const m = incomplete[0] as NodeRuntime;
      const missing = (m.node as MergeNode).wait.filter((w) => !m.received.has(w));
      void this.end("bad", `nothing left to do, but merge "${m.node.id}" never got ${missing.join(", ")}`);
    } else if (bad.length > 0) {
      void this.end("bad", `nothing left to do; ${bad.map((e) => e.tag).join(", ")} went unhandled`);
    } else {
      void this.end("good", `nothing left to do${this.dangling.length ? ` after ${this.dangling.map((e) => e.tag).join(", ")}` : ""}`);
    }
  }

  private armRunTimeout(startedAt: number): void {
    const ms = this.record.flow.timeoutMs;
    if (ms === undefined) return;
    const left = Math.max(0, startedAt + ms - now());
    this.runTimer = setTimeout(() => void this.end("bad", `run timed out after ${formatDuration(ms)}`), left);
    this.runTimer.unref();
  }

  /**
   * The host is stopping: kill the tasks but record nothing, so that the next start resumes
   * the run and runs them again as new attempts.
   */
  async suspend(): Promise<void> {
    if (this.endPromise !== undefined) return this.endPromise;
    this.ended = true;
    if (this.runTimer !== undefined) clearTimeout(this.runTimer);
    this.runAbort.abort(new Error("the host is stopping"));
    this.endPromise = Promise.allSettled([...this.running]).then(() => undefined);
    return this.endPromise;
  }

  /** Ends the run once: stops every task (whole process groups), then reports. */
  end(result: RunResult, said: string): Promise<void> {
    if (this.endPromise !== undefined) return this.endPromise;
    const reason = this.deps.secrets.mask(said);
    this.ended = true;
    if (this.runTimer !== undefined) clearTimeout(this.runTimer);
    this.endPromise = (async () => {
      const heldNodes = new Set(this.held.map((h) => h.node.id));
      const stopping = [...this.nodes.values()].filter((n) => n.state === "running" || (n.state === "waiting" && n.attempts > 0) || n.enabled || heldNodes.has(n.node.id));
      this.runAbort.abort(new Error(result === "cancelled" ? reason : `run ended: ${reason}`));
      await Promise.allSettled([...this.running]);
      for (const rt of stopping) {
        rt.finish("cancelled", undefined, undefined, result === "cancelled" ? reason : "stopped: the run ended", undefined);
        this.journal(rt.node.id, { t: "done", at: now(), state: "cancelled", reason: rt.reason ?? "stopped" });
        this.publishNode(rt.node.id);
      }
      for (const rt of this.nodes.values()) if (rt.skipIfUnreached()) this.publishNode(rt.node.id);
      // Every record of the run is on disk before its end is written (task ends were not
      // waited for, see finishTask); a run whose records can not be kept did not end good.
      const lost = await this.deps.journal.flush().then(
        () => undefined,
        (e: unknown) => errorMessage(e),
      );
      if (lost !== undefined && result === "good") this.deps.onEnd("bad", `could not record the run's progress: ${lost}`);
      else this.deps.onEnd(result, reason);
    })();
    return this.endPromise;
  }

  // --- output ----------------------------------------------------------------------

  private journal(node: string, line: StatusLine, o: { lazy?: boolean } = {}): void {
    this.deps.journal.append(node, line, o);
  }

  private line(node: string, l: { at: number; text: string; stream: LogLine["stream"] }, instance?: number): void {
    const rt = this.nodes.get(node);
    if (rt === undefined) return;
    // Numbered within this run attempt: another attempt's lines live on its own host's disk
    // and, in the cluster's history, apart by their attempt.
    // Masked here, where the line enters floe: the log file, the journal, the event bus, JetStream and the API get it masked.
    const line: LogLine = { attempt: this.record.attempt, seq: ++rt.logLines, at: l.at, text: this.deps.secrets.mask(l.text), stream: l.stream, ...(instance !== undefined ? { instance } : {}) };
    if (l.stream === "sys") {
      // floe's own lines about the node (its folder, its command, a retry) go with its status
      // records: a task that prints nothing then has no file of its own.
      this.deps.journal.append(node, { t: "log", ...line }, { syncWithinMs: LOG_SYNC_WITHIN_MS });
    } else {
      this.printed.add(node);
      this.deps.openLog(node).append(line, { syncWithinMs: LOG_SYNC_WITHIN_MS });
    }
    this.deps.publish({ v: 1, type: "log", ref: this.record.ref, node, line });
  }

  private sysLine(node: string, text: string, instance?: number): void {
    this.line(node, { at: now(), text, stream: "sys" }, instance);
  }

  private publishNode(id: string): void {
    this.deps.publish({ v: 1, type: "node", ref: this.record.ref, node: this.status(id) });
  }
}

