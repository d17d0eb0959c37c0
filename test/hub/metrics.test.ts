import t from "tap";
import { Metrics } from "../../hub/metrics.js";
import { LocalBus } from "../../store/bus.js";
import type { NodeStatus, RunEvent, RunRef, RunSummary } from "../../hub/types.js";

t.test("run gauges come from the tally: counts by state and the oldest pend's age", async (t) => {
  const m = new Metrics(new LocalBus<RunEvent>());
  t.teardown(() => m.close());
  const text = await m.render({ pending: 3, active: 1, archived: 200, oldestPendingAt: 10_000 }, 12_500);
  t.match(text, /^floe_runs\{state="pending"\} 3$/m);
  t.match(text, /^floe_runs\{state="active"\} 1$/m);
  t.match(text, /^floe_runs\{state="archived"\} 200$/m);
  t.match(text, /^floe_pending_oldest_age_seconds 2\.5$/m);
  t.match(text, /^floe_runs_ended_total\{result="lost"\} 0$/m, "every result is listed from the start, so rate() sees the first one");
  const idle = await m.render({ pending: 0, active: 0, archived: 0, oldestPendingAt: undefined }, 12_500);
  t.match(idle, /^floe_pending_oldest_age_seconds 0$/m);
  for (const g of ["process_resident_memory_bytes", "nodejs_heap_size_total_bytes", "nodejs_heap_size_used_bytes", "nodejs_external_memory_bytes"]) {
    const m = new RegExp(`^${g} (\\d+)$`, "m").exec(text);
    t.ok(m !== null && Number(m[1]) > 0, `${g} is a positive byte count`);
  }
  t.match(text, /^process_cpu_seconds_total \d/m, "process CPU, from the default metrics");
  t.match(text, /^nodejs_eventloop_lag_p99_seconds \d/m, "event-loop lag, from the default metrics");
});

t.test("histograms: task durations, adoption → activation and trigger → first task, one observation per run", async (t) => {
  const bus = new LocalBus<RunEvent>();
  const m = new Metrics(bus);
  t.teardown(() => m.close());
  const ref: RunRef = { flow: "f", ver: 1, run: "01RUN", adoptedBy: "h1" } as RunRef;
  const summary = (over: Partial<RunSummary>): RunEvent => ({ v: 1, type: "run", summary: { ref, state: "active", adoptedAt: 1_000, ...over } as RunSummary });
  const task = (over: Partial<NodeStatus>): RunEvent => ({ v: 1, type: "node", ref, node: { id: "a", class: "task", state: "running", ...over } as NodeStatus });
  bus.publish(summary({ startedAt: 1_030 }));
  bus.publish(summary({ startedAt: 1_030 })); // a later update of the same active run
  bus.publish(task({ startedAt: 1_200 }));
  bus.publish(task({ state: "good", startedAt: 1_200, endedAt: 3_200 }));
  bus.publish(task({ id: "b", state: "bad", startedAt: 3_300, endedAt: 3_400 } as Partial<NodeStatus>));
  bus.publish(summary({ state: "archived", result: "good", startedAt: 1_030 }));
  await new Promise((r) => setImmediate(r));
  const text = await m.render({ pending: 0, active: 0, archived: 1, oldestPendingAt: undefined });
  t.match(text, /^floe_dispatch_latency_seconds_count 1$/m);
  t.match(text, /^floe_dispatch_latency_seconds_sum 0\.03$/m);
  t.match(text, /^floe_dispatch_latency_seconds_bucket\{le="0\.025"\} 0$/m);
  t.match(text, /^floe_dispatch_latency_seconds_bucket\{le="0\.05"\} 1$/m);
  t.match(text, /^floe_trigger_to_first_task_seconds_count 1$/m);
  t.match(text, /^floe_trigger_to_first_task_seconds_sum 0\.2$/m);
  t.match(text, /^floe_task_duration_seconds_count 2$/m);
  t.match(text, /^floe_task_duration_seconds_bucket\{le="0\.1"\} 1$/m);
  t.match(text, /^floe_task_duration_seconds_bucket\{le="5"\} 2$/m);
  t.match(text, /^floe_runs_ended_total\{result="good"\} 1$/m);
});
