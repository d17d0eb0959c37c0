/**
 * Prometheus metrics of a host, counted from the run events it publishes plus what the
 * hub reports directly (trigger fires and failures). prom-client writes the exposition
 * text, the histograms (so a p99 of task time or dispatch latency can be computed) and the
 * process metrics (CPU, memory, event-loop lag, GC, open files).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Bus } from "../store/bus.js";
import type { BusCounts } from "../store/nats-bus.js";
import type { RunTally } from "./run-table.js";
import type { RunEvent } from "./types.js";

/**
 * The process metrics, once per process: each collection installs event-loop and GC
 * observers that live as long as the process, so hosts made in one process (tests) share it.
 */
let processRegistry: Registry | undefined;
/**
 * How often the event loop's lag is sampled. prom-client's default, 10 ms, wakes an idle
 * host 100 times a second: 0.44 % of a core here (an idle Node process with it, 0.58 %;
 * without, 0.14 %; at 100 ms, 0.18 %), most of an idle host's CPU. Lag worth seeing is tens
 * of milliseconds, which a sample every 100 ms still catches.
 */
const EVENT_LOOP_SAMPLE_MS = 100;
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }
  return processRegistry;
}

/** What the notifier counted since the host started, and what waits now. */
export interface NotifyCounts {
  readonly sent: number;
  readonly failedAttempts: number;
  readonly givenUp: number;
  readonly pending: number;
}

const RESULTS = ["good", "bad", "cancelled", "lost"] as const;
const STATES = ["pending", "active", "archived"] as const;

export class Metrics {
  private readonly registry = new Registry();
  private readonly runs = new Gauge({ name: "floe_runs", help: "Runs this host knows, by state.", labelNames: ["state"], registers: [this.registry] });
  private readonly runsEnded = new Counter({ name: "floe_runs_ended_total", help: "Runs ended since start, by result.", labelNames: ["result"], registers: [this.registry] });
  private readonly oldestPending = new Gauge({ name: "floe_pending_oldest_age_seconds", help: "Age of the oldest pending run.", registers: [this.registry] });
  private readonly taskSeconds = new Histogram({
    name: "floe_task_duration_seconds",
    help: "Durations of finished task attempts.",
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  private readonly dispatchSeconds = new Histogram({
    name: "floe_dispatch_latency_seconds",
    help: "From adoption of a run (its trigger) to its activation on a host.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
    registers: [this.registry],
  });
  private readonly firstTaskSeconds = new Histogram({
    name: "floe_trigger_to_first_task_seconds",
    help: "From adoption of a run (its trigger) to the start of its first task.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
    registers: [this.registry],
  });
  private readonly fires = new Counter({ name: "floe_trigger_fires_total", help: "Triggers that started a run, by type.", labelNames: ["type"], registers: [this.registry] });
  private readonly fireFailures = new Counter({ name: "floe_trigger_failures_total", help: "Triggers that failed to start a run, by type.", labelNames: ["type"], registers: [this.registry] });
  /** Adoption times of runs activated here whose first task has not started yet. */
  private readonly awaitingFirstTask = new Map<string, number>();
  private readonly off: () => void;

  constructor(
    bus: Bus<RunEvent>,
    /** The notifier's counts, when the host sends notifications. */
    notify?: () => NotifyCounts,
  ) {
    for (const r of RESULTS) this.runsEnded.inc({ result: r }, 0);
    this.off = bus.subscribe((ev) => this.onEvent(ev));
    if (notify !== undefined) this.notifyMetrics(notify);
  }

  /**
   * What the cluster's event bus sends and receives (store/nats-bus.ts): how much NATS
   * traffic a host has, and whether it stays in proportion to what the host shows.
   */
  followBus(counts: () => BusCounts): void {
    const registers = [this.registry];
    const total = readTotal(registers, counts);
    total("floe_bus_events_published_total", "Events this host published to the cluster.", (c) => c.published);
    total("floe_bus_messages_sent_total", "NATS messages those events took (log lines go in batches).", (c) => c.sent);
    total("floe_bus_messages_received_total", "NATS messages of other hosts' events received.", (c) => c.messages);
    total("floe_bus_watched_messages_received_total", "Of those, messages of node events and log lines of watched runs.", (c) => c.watchedMessages);
    total("floe_bus_events_received_total", "Other hosts' events received.", (c) => c.received);
    new Gauge({
      name: "floe_bus_watched_runs",
      help: "Runs whose node events and log lines this host receives now (an open run page, a followed log).",
      registers,
      collect() {
        this.set(counts().watchedRuns);
      },
    });
  }

  /** The notifier keeps its own totals: each scrape reads them. */
  private notifyMetrics(notify: () => NotifyCounts): void {
    const registers = [this.registry];
    const total = readTotal(registers, notify);
    total("floe_notifications_sent_total", "Notifications delivered (a 2xx answer).", (n) => n.sent);
    total("floe_notification_failures_total", "Notification attempts that failed (no answer, or not a 2xx).", (n) => n.failedAttempts);
    total("floe_notifications_given_up_total", "Notifications given up after common.notify.retry-for.", (n) => n.givenUp);
    new Gauge({
      name: "floe_notifications_pending",
      help: "Notifications waiting to be sent or retried.",
      registers,
      collect() {
        this.set(notify().pending);
      },
    });
  }

  private onEvent(ev: RunEvent): void {
    if (ev.type === "run") {
      const s = ev.summary;
      if (s.state === "archived") {
        this.awaitingFirstTask.delete(s.ref.run);
        if (s.result !== undefined) this.runsEnded.inc({ result: s.result });
      } else if (s.state === "active" && s.startedAt !== undefined && !this.awaitingFirstTask.has(s.ref.run)) {
        this.dispatchSeconds.observe((s.startedAt - s.adoptedAt) / 1000);
        this.awaitingFirstTask.set(s.ref.run, s.adoptedAt);
        // A run that moved to another host before its first task never reports here: bound the map.
        if (this.awaitingFirstTask.size > 10_000) this.awaitingFirstTask.delete(this.awaitingFirstTask.keys().next().value as string);
      }
    } else if (ev.type === "node" && ev.node.class === "task") {
      const adoptedAt = this.awaitingFirstTask.get(ev.ref.run);
      if (adoptedAt !== undefined && ev.node.startedAt !== undefined) {
        // Once per run: the entry is dropped with the first observation.
        this.firstTaskSeconds.observe((ev.node.startedAt - adoptedAt) / 1000);
        this.awaitingFirstTask.delete(ev.ref.run);
      }
      if (ev.node.endedAt !== undefined && ev.node.startedAt !== undefined && (ev.node.state === "good" || ev.node.state === "bad")) {
        this.taskSeconds.observe((ev.node.endedAt - ev.node.startedAt) / 1000);
      }
    }
  }

  triggerFired(type: string, ok: boolean): void {
    (ok ? this.fires : this.fireFailures).inc({ type });
  }

  /** The exposition text; `runs`: this host's runs by state (a scrape must not list them all). */
  async render(runs: RunTally, now = Date.now()): Promise<string> {
    for (const s of STATES) this.runs.set({ state: s }, runs[s]);
    this.oldestPending.set(runs.oldestPendingAt !== undefined ? (now - runs.oldestPendingAt) / 1000 : 0);
    return (await this.registry.metrics()) + (await processMetrics().metrics());
  }

  /** The Content-Type of the exposition text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.off();
  }
}

/**
 * Counters whose totals another part keeps (the notifier, the bus): each scrape reads
 * `source()` and the counter says what `pick` takes from it.
 */
function readTotal<T>(registers: Registry[], source: () => T): (name: string, help: string, pick: (t: T) => number) => Counter {
  return (name, help, pick) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(pick(source()));
      },
    });
}
