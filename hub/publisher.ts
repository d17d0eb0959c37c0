/**
 * Where a run's news goes: the console (task output lines), the cluster's run index (in
 * cluster mode) and the event bus (the dashboard, `floe run`, other hosts).
 */
import type { Bus } from "../store/bus.js";
import { consoleLine } from "./console-line.js";
import type { IndexMirror } from "./index-mirror.js";
import { summarize, type RunEntry } from "./run-table.js";
import type { RunEvent, RunSummary } from "./types.js";

export class Publisher {
  constructor(
    private readonly bus: Bus<RunEvent>,
    private readonly console: ((line: string) => void) | undefined,
    /** Cluster mode: the shared run index. */
    private readonly mirror: IndexMirror | undefined,
  ) {}

  /**
   * A run's summary changed (in a cluster with its flow's name, for hosts that lack the flow).
   * `indexed`: the run index has it already (it went with the run's release), so it is not written there again.
   */
  run(e: RunEntry, o: { readonly indexed?: boolean } = {}): void {
    this.event({ v: 1, type: "run", summary: this.summaryOf(e) }, o);
  }

  /** The summary run() publishes of `e`. */
  summaryOf(e: RunEntry): RunSummary & { readonly name?: string } {
    return this.mirror !== undefined ? { ...summarize(e), name: e.record.flow.name } : summarize(e);
  }

  summary(summary: RunSummary & { readonly name?: string }): void {
    this.event({ v: 1, type: "run", summary });
  }

  event(ev: RunEvent, o: { readonly indexed?: boolean } = {}): void {
    if (ev.type === "log" && this.console !== undefined) {
      this.console(consoleLine(ev.ref, ev.node, ev.line));
    }
    if (o.indexed !== true) this.mirror?.write(ev);
    this.bus.publish(ev);
  }
}
