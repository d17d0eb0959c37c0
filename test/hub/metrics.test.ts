import t from "tap";
import { Metrics } from "../../hub/metrics.js";
import { LocalBus } from "../../store/bus.js";
import type { RunEvent } from "../../hub/types.js";

t.test("run gauges come from the tally: counts by state and the oldest pend's age", async (t) => {
  const m = new Metrics(new LocalBus<RunEvent>());
  t.teardown(() => m.close());
  const text = m.render({ pending: 3, active: 1, archived: 200, oldestPendingAt: 10_000 }, 12_500);
  t.match(text, /^floe_runs\{state="pending"\} 3$/m);
  t.match(text, /^floe_runs\{state="active"\} 1$/m);
  t.match(text, /^floe_runs\{state="archived"\} 200$/m);
  t.match(text, /^floe_pending_oldest_age_seconds 2\.500$/m);
  const idle = m.render({ pending: 0, active: 0, archived: 0, oldestPendingAt: undefined }, 12_500);
  t.match(idle, /^floe_pending_oldest_age_seconds 0$/m);
  for (const g of ["process_resident_memory_bytes", "nodejs_heap_size_total_bytes", "nodejs_heap_size_used_bytes", "nodejs_external_memory_bytes"]) {
    const m = new RegExp(`^${g} (\\d+)$`, "m").exec(text);
    t.ok(m !== null && Number(m[1]) > 0, `${g} is a positive byte count`);
  }
});
