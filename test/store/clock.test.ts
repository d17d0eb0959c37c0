/**
 * The cluster's clock (store/clock.ts): it takes its time from a source (Redis's TIME in a
 * cluster), counts on the monotonic clock in between, and never goes backwards.
 */
import t from "tap";
import { ClusterClock } from "../../store/clock.js";

t.test("follows its source, counts on between readings, and never goes back", async (t) => {
  const c = new ClusterClock();
  let source = 1_000_000;
  await c.follow(() => Promise.resolve(source), { everyMs: 3_600_000 });
  const a = c.now();
  t.ok(Math.abs(a - source) < 50, `anchored on the source (${a - source} ms off)`);
  await new Promise((r) => setTimeout(r, 120));
  const b = c.now();
  t.ok(b - a >= 100 && b - a < 1000, `counts on the monotonic clock between readings (+${b - a} ms)`);

  source = 1_000_000 + 5 * 60_000; // the source steps five minutes ahead
  await c.anchor();
  t.ok(c.now() >= source && c.now() - source < 50, "a step ahead is followed at the next reading");

  const high = c.now();
  source = 1_000_000; // and back
  await c.anchor();
  t.equal(c.now(), high, "a step back stands still rather than going back");
  source = high + 10_000;
  await c.anchor();
  t.ok(c.now() >= high + 10_000, "and moves on once the source is past where it stood");
  c.stop();
});

t.test("a source that does not answer leaves the clock counting from its last reading", async (t) => {
  const c = new ClusterClock();
  await c.follow(() => Promise.resolve(2_000_000), { everyMs: 3_600_000 });
  const before = c.now();
  await c.follow(() => Promise.reject(new Error("Redis away")), { everyMs: 3_600_000 });
  const after = c.now();
  t.ok(after >= before && after - before < 1000, "no jump to the wall clock, no error");
  c.stop();
});

t.test("timers run on the monotonic clock", async (t) => {
  const c = new ClusterClock();
  const start = performance.now();
  const alive = setTimeout(() => undefined, 5000); // the clock's timers are unref'd: keep the test's process up
  await new Promise<void>((resolve) => c.setTimer(resolve, 50));
  clearTimeout(alive);
  t.ok(performance.now() - start >= 45);
});
