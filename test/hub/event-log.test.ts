/** The event ring: numbering, what `since` returns before and after it wraps, gaps. */
import t from "tap";
import { EventLog } from "../../hub/event-log.js";
import type { RunEvent } from "../../hub/types.js";
import { LocalBus } from "../../store/bus.js";

// Only the ids matter here; the ring never looks inside an event.
const ev = (n: number): RunEvent => ({ n }) as unknown as RunEvent;

t.test("since() before and after the ring wraps", async (t) => {
  const bus = new LocalBus<RunEvent>();
  const log = new EventLog(bus, 5);
  t.same(log.since(0), { events: [], gap: false });
  for (let i = 1; i <= 3; i++) bus.publish(ev(i));
  t.same(log.since(0).events.map((e) => e.id), [1, 2, 3]);
  t.same(log.since(2).events.map((e) => e.id), [3]);
  t.same(log.since(3).events, []);
  for (let i = 4; i <= 12; i++) bus.publish(ev(i));
  t.equal(log.lastId, 12);
  t.same(log.since(0).events.map((e) => e.id), [8, 9, 10, 11, 12], "the newest 5, oldest first");
  t.same(log.since(9), { events: [{ id: 10, ev: ev(10) }, { id: 11, ev: ev(11) }, { id: 12, ev: ev(12) }], gap: false });
  t.same(log.since(7).events.map((e) => e.id), [8, 9, 10, 11, 12]);
  t.equal(log.since(7).gap, false, "nothing after 7 was dropped");
  t.equal(log.since(3).gap, true, "4..7 were dropped");
  t.same(log.since(12).events, []);
  t.same(log.since(99).events, []);
  const live: number[] = [];
  const off = log.listen((e) => live.push(e.id));
  bus.publish(ev(13));
  off();
  bus.publish(ev(14));
  t.same(live, [13]);
  log.close();
});
