/**
 * The targets of the benchmark issues, per figure: what the table prints next to each figure
 * and whether this run met it. Only figures with a target are listed. Issue 20 states them
 * as ratios against the baselines measured in the same run (absolute times on this shared
 * machine move 2× from day to day).
 */
import type { Figure } from "./stats.js";

export interface Target {
  readonly text: string;
  readonly met: boolean;
}

const p50 = (f: Figure): number => f.value ?? f.dist?.p50 ?? Number.NaN;
const p99 = (f: Figure): number => f.dist?.p99 ?? Number.NaN;

export function targetOf(f: Figure): Target | undefined {
  switch (true) {
    case f.id === "throughput.runs_per_s":
      return { text: "≥ 0.85×", met: (f.ratio ?? 0) >= 0.85 };
    case f.id === "throughput.host_cpu_per_run":
      return { text: "≤ 1.5×", met: (f.ratio ?? Number.POSITIVE_INFINITY) <= 1.5 };
    case f.id === "throughput.rss_after":
      return { text: "≤ 100 MB", met: p50(f) <= 100 };
    case f.id === "latency.trigger_to_first_task.idle":
      return { text: "≤ 1.3×", met: (f.ratio ?? Number.POSITIVE_INFINITY) <= 1.3 };
    case f.id === "latency.task_gap.idle":
      return { text: "≤ 1.3×", met: (f.ratio ?? Number.POSITIVE_INFINITY) <= 1.3 };
    case f.id === "memory.rss_pending": {
      const growth = (f.value ?? Number.NaN) - (f.baseline?.value ?? Number.NaN);
      return { text: "≤ 25 MB growth", met: growth <= 25 };
    }
    case f.id === "dispatch.decide.1000x10":
      return { text: "p99 ≤ 1 ms", met: p99(f) <= 1 };
    case f.id === "durability.throughput":
      return { text: "≥ 0.95×", met: (f.ratio ?? 0) >= 0.95 };
    case f.id === "cluster.trigger_to_first_task.idle":
      return { text: "p50 ≤ 6, p99 ≤ 20 ms", met: p50(f) <= 6 && p99(f) <= 20 };
    case f.id === "cluster.host_loss_redispatch":
      return { text: "p99 ≤ 3000 ms", met: p99(f) <= 3000 };
    default:
      return undefined;
  }
}
