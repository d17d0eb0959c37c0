/**
 * Prometheus metrics of a host, counted from the run events it publishes plus what the
 * hub reports directly (trigger fires and failures).
 */
import type { Bus } from "../store/bus.js";
import type { RunTally } from "./run-table.js";
import type { RunEvent } from "./types.js";

/** What the notifier counted since the host started, and what waits now. */
export interface NotifyCounts {
  readonly sent: number;
  readonly failedAttempts: number;
  readonly givenUp: number;
  readonly pending: number;
}

export class Metrics {
  private readonly runsEnded = new Map<string, number>();
  private taskSeconds = { sum: 0, count: 0 };
  private dispatchSeconds = { sum: 0, count: 0 };
  private readonly fires = new Map<string, number>();
  private readonly fireFailures = new Map<string, number>();
  private readonly off: () => void;

  constructor(
    bus: Bus<RunEvent>,
    /** The notifier's counts, when the host sends notifications. */
    private readonly notify?: () => NotifyCounts,
  ) {
    this.off = bus.subscribe((ev) => this.onEvent(ev));
  }

  private onEvent(ev: RunEvent): void {
    if (ev.type === "run" && ev.summary.state === "archived" && ev.summary.result !== undefined) {
      this.runsEnded.set(ev.summary.result, (this.runsEnded.get(ev.summary.result) ?? 0) + 1);
    } else if (ev.type === "run" && ev.summary.state === "active" && ev.summary.startedAt !== undefined) {
      this.dispatchSeconds.sum += (ev.summary.startedAt - ev.summary.adoptedAt) / 1000;
      this.dispatchSeconds.count++;
    } else if (ev.type === "node" && ev.node.class === "task" && ev.node.endedAt !== undefined && ev.node.startedAt !== undefined && (ev.node.state === "good" || ev.node.state === "bad")) {
      this.taskSeconds.sum += (ev.node.endedAt - ev.node.startedAt) / 1000;
      this.taskSeconds.count++;
    }
  }

  triggerFired(type: string, ok: boolean): void {
    const m = ok ? this.fires : this.fireFailures;
    m.set(type, (m.get(type) ?? 0) + 1);
  }

  /** The exposition text; `runs`: this host's runs by state (a scrape must not list them all). */
  render(runs: RunTally, now = Date.now()): string {
    const lines: string[] = [];
    const gauge = (name: string, help: string, type: "gauge" | "counter" = "gauge") => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    gauge("floe_runs", "Runs this host knows, by state.");
    for (const s of ["pending", "active", "archived"] as const) lines.push(`floe_runs{state="${s}"} ${runs[s]}`);
    gauge("floe_runs_ended_total", "Runs ended since start, by result.", "counter");
    for (const r of ["good", "bad", "cancelled", "lost"]) lines.push(`floe_runs_ended_total{result="${r}"} ${this.runsEnded.get(r) ?? 0}`);
    gauge("floe_pending_oldest_age_seconds", "Age of the oldest pending run.");
    lines.push(`floe_pending_oldest_age_seconds ${runs.oldestPendingAt !== undefined ? ((now - runs.oldestPendingAt) / 1000).toFixed(3) : 0}`);
    gauge("floe_task_duration_seconds", "Durations of finished task attempts.", "counter");
    lines.push(`floe_task_duration_seconds_sum ${this.taskSeconds.sum.toFixed(3)}`, `floe_task_duration_seconds_count ${this.taskSeconds.count}`);
    gauge("floe_dispatch_latency_seconds", "From adoption to activation.", "counter");
    lines.push(`floe_dispatch_latency_seconds_sum ${this.dispatchSeconds.sum.toFixed(3)}`, `floe_dispatch_latency_seconds_count ${this.dispatchSeconds.count}`);
    const mem = process.memoryUsage();
    gauge("process_resident_memory_bytes", "Resident memory of this host's process.");
    lines.push(`process_resident_memory_bytes ${mem.rss}`);
    gauge("nodejs_heap_size_total_bytes", "V8 heap reserved.");
    lines.push(`nodejs_heap_size_total_bytes ${mem.heapTotal}`);
    gauge("nodejs_heap_size_used_bytes", "V8 heap in use (live objects and garbage not yet collected).");
    lines.push(`nodejs_heap_size_used_bytes ${mem.heapUsed}`);
    gauge("nodejs_external_memory_bytes", "Memory of buffers and other objects outside the V8 heap.");
    lines.push(`nodejs_external_memory_bytes ${mem.external}`);
    gauge("floe_trigger_fires_total", "Triggers that started a run, by type.", "counter");
    for (const [t, n] of this.fires) lines.push(`floe_trigger_fires_total{type="${t}"} ${n}`);
    gauge("floe_trigger_failures_total", "Triggers that failed to start a run, by type.", "counter");
    for (const [t, n] of this.fireFailures) lines.push(`floe_trigger_failures_total{type="${t}"} ${n}`);
    const n = this.notify?.();
    if (n !== undefined) {
      gauge("floe_notifications_sent_total", "Notifications delivered (a 2xx answer).", "counter");
      lines.push(`floe_notifications_sent_total ${n.sent}`);
      gauge("floe_notification_failures_total", "Notification attempts that failed (no answer, or not a 2xx).", "counter");
      lines.push(`floe_notification_failures_total ${n.failedAttempts}`);
      gauge("floe_notifications_given_up_total", "Notifications given up after common.notify.retry-for.", "counter");
      lines.push(`floe_notifications_given_up_total ${n.givenUp}`);
      gauge("floe_notifications_pending", "Notifications waiting to be sent or retried.");
      lines.push(`floe_notifications_pending ${n.pending}`);
    }
    return lines.join("\n") + "\n";
  }

  close(): void {
    this.off();
  }
}
