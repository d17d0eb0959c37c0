/** timer and cron triggers on an injected clock: hours of schedule in milliseconds of test. */
import { hostCommands } from "../../agent/host-commands.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import type { TriggerNode } from "../../flows/model.js";
import { TriggerManager } from "../../hub/triggers/manager.js";
import { Schedule } from "../../hub/triggers/schedule.js";
import type { TriggerSink, TriggerSinkRequest } from "../../hub/triggers/sink.js";
import { config } from "../helpers/hub.js";
import { captureLog, FakeClock } from "./helpers.js";

/** Records each run request with the (fake) time it was made. */
class TimedSink implements TriggerSink {
  readonly calls: (TriggerSinkRequest & { at: string })[] = [];
  refuse: Error | undefined;
  constructor(private readonly clock: FakeClock) {}
  async trigger(req: TriggerSinkRequest): Promise<unknown> {
    this.calls.push({ ...req, at: new Date(this.clock.now()).toISOString() });
    if (this.refuse !== undefined) throw this.refuse;
    return { ok: true };
  }
  times(): string[] {
    return this.calls.map((c) => c.at);
  }
}

function trigger(type: "timer" | "cron", opts: Record<string, unknown>): TriggerNode {
  return { class: "trigger", id: "tick", name: "tick", type, opts };
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), "floe-sched-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function setup(t: Test, start: string) {
  const clock = new FakeClock(start);
  const root = tempDir(t);
  const sink = new TimedSink(clock);
  const logs = captureLog();
  const make = (trig: TriggerNode): Schedule => new Schedule({ flow: "nightly", ver: 1, trigger: trig, root, sink, log: logs.log, clock });
  return { clock, root, sink, logs, make };
}

t.test("a timer fires every period, with its other opts, and records its last fire", async (t) => {
  const s = setup(t, "2026-03-01T10:00:00Z");
  const sch = s.make(trigger("timer", { period: 60, url: "git@example.com:x.git", branch: "main" }));
  await sch.start();
  const settle = (): Promise<void> => sch.idle();
  await s.clock.advanceTo("2026-03-01T10:00:59Z", settle);
  t.equal(s.sink.calls.length, 0, "not before the first period (no fire at start)");
  await s.clock.advanceTo("2026-03-01T10:01:00Z", settle);
  t.same(s.sink.calls[0], { flow: "nightly", ver: 1, trigger: "tick", by: "timer", opts: { url: "git@example.com:x.git", branch: "main" }, at: "2026-03-01T10:01:00.000Z" });
  await s.clock.advanceTo("2026-03-01T10:10:30Z", settle);
  t.equal(s.sink.calls.length, 10, "one per minute");
  t.equal(s.sink.times().at(-1), "2026-03-01T10:10:00.000Z");
  const saved = JSON.parse(readFileSync(join(s.root, "triggers", "nightly", "tick.last.json"), "utf8")) as { last: number };
  t.equal(new Date(saved.last).toISOString(), "2026-03-01T10:10:00.000Z");
  t.equal(new Date(sch.status().next ?? 0).toISOString(), "2026-03-01T10:11:00.000Z");
  await sch.stop();
  await s.clock.advanceTo("2026-03-01T11:00:00Z", settle);
  t.equal(s.sink.calls.length, 10, "nothing after stop");
  await sch.stop();
});

t.test("a timer without period fires every 10 seconds, as floe's did", async (t) => {
  const s = setup(t, "2026-03-01T10:00:00Z");
  const sch = s.make(trigger("timer", {}));
  await sch.start();
  await s.clock.advance(35_000, () => sch.idle());
  t.same(s.sink.times(), ["2026-03-01T10:00:10.000Z", "2026-03-01T10:00:20.000Z", "2026-03-01T10:00:30.000Z"]);
  await sch.stop();
});

t.test("cron */5 fires on the fifth minutes", async (t) => {
  const s = setup(t, "2026-03-01T10:02:30Z");
  const sch = s.make(trigger("cron", { cron: "*/5 * * * *", branch: "main" }));
  await sch.start();
  await s.clock.advanceTo("2026-03-01T10:16:00Z", () => sch.idle());
  t.same(s.sink.times(), ["2026-03-01T10:05:00.000Z", "2026-03-01T10:10:00.000Z", "2026-03-01T10:15:00.000Z"]);
  t.same(s.sink.calls[0]?.opts, { branch: "main" }, "cron and tz stay behind");
  t.equal(s.sink.calls[0]?.by, "cron");
  await sch.stop();
});

t.test("cron respects its time zone, daylight saving included", async (t) => {
  for (const [tz, start, want] of [
    ["America/New_York", "2026-01-15T00:00:00Z", "2026-01-15T14:00:00.000Z"],
    ["America/New_York", "2026-07-15T00:00:00Z", "2026-07-15T13:00:00.000Z"],
    ["Europe/Paris", "2026-01-15T00:00:00Z", "2026-01-15T08:00:00.000Z"],
    ["Asia/Tokyo", "2026-01-15T00:00:00Z", "2026-01-16T00:00:00.000Z"],
  ] as const) {
    const s = setup(t, start);
    const sch = s.make(trigger("cron", { cron: "0 9 * * *", tz }));
    await sch.start();
    await s.clock.advance(24 * 3600_000, () => sch.idle());
    t.same(s.sink.times(), [want], `09:00 in ${tz}`);
    await sch.stop();
  }
});

t.test("a restart resumes from the persisted last fire", async (t) => {
  const s = setup(t, "2026-03-01T10:00:00Z");
  const trig = trigger("timer", { period: 60 });
  const a = s.make(trig);
  await a.start();
  await s.clock.advanceTo("2026-03-01T10:00:30Z", () => a.idle());
  await a.stop();
  const b = s.make(trig);
  await b.start();
  await s.clock.advanceTo("2026-03-01T10:01:00Z", () => b.idle());
  t.same(s.sink.times(), ["2026-03-01T10:01:00.000Z"], "a restart before the first fire does not push it back");
  await s.clock.advanceTo("2026-03-01T10:01:40Z", () => b.idle());
  await b.stop();
  const c = s.make(trig);
  await c.start();
  t.equal(s.sink.calls.length, 1, "no catch-up: nothing was missed");
  await s.clock.advanceTo("2026-03-01T10:02:00Z", () => c.idle());
  t.same(s.sink.times(), ["2026-03-01T10:01:00.000Z", "2026-03-01T10:02:00.000Z"], "on the old schedule, not restart + period");
  await c.stop();
});

t.test("catch-up: after downtime of many periods, exactly one run at once, then on schedule", async (t) => {
  const s = setup(t, "2026-03-01T10:00:00Z");
  const trig = trigger("timer", { period: 60 });
  const a = s.make(trig);
  await a.start();
  await s.clock.advanceTo("2026-03-01T10:01:00Z", () => a.idle());
  await a.stop();
  s.clock.jump(10 * 60_000 + 15_000); // down from 10:01 to 10:11:15, ten fires missed
  const b = s.make(trig);
  await b.start();
  t.same(s.sink.times(), ["2026-03-01T10:01:00.000Z", "2026-03-01T10:11:15.000Z"], "one catch-up run, not ten");
  t.ok(s.logs.records.some((r) => r.msg === "schedule missed fires while down; one catch-up run"));
  await s.clock.advanceTo("2026-03-01T10:13:00Z", () => b.idle());
  t.same(s.sink.times().slice(2), ["2026-03-01T10:12:00.000Z", "2026-03-01T10:13:00.000Z"], "then on the period's grid, the same on every host of a cluster");
  await b.stop();
});

t.test("catch-up for cron, and a late wake-up fires once rather than a burst", async (t) => {
  const s = setup(t, "2026-03-01T10:02:00Z");
  const trig = trigger("cron", { cron: "*/5 * * * *" });
  const a = s.make(trig);
  await a.start();
  await s.clock.advanceTo("2026-03-01T10:06:00Z", () => a.idle());
  await a.stop();
  s.clock.jump(3600_000); // 11:06
  const b = s.make(trig);
  await b.start();
  t.same(s.sink.times(), ["2026-03-01T10:05:00.000Z", "2026-03-01T11:06:00.000Z"]);
  await s.clock.advanceTo("2026-03-01T11:10:00Z", () => b.idle());
  t.equal(s.sink.times().at(-1), "2026-03-01T11:10:00.000Z", "back on the fifth minutes");
  s.clock.skip(30 * 60_000); // the event loop (or the laptop) slept through six fires
  await s.clock.advance(0, () => b.idle());
  t.same(s.sink.times().slice(3), ["2026-03-01T11:40:00.000Z"], "one late fire");
  await s.clock.advanceTo("2026-03-01T11:45:00Z", () => b.idle());
  t.equal(s.sink.times().at(-1), "2026-03-01T11:45:00.000Z");
  t.equal(s.sink.calls.length, 5);
  await b.stop();
});

t.test("a refused run is logged; the schedule goes on", async (t) => {
  const s = setup(t, "2026-03-01T10:00:00Z");
  const sch = s.make(trigger("timer", { period: 10 }));
  await sch.start();
  s.sink.refuse = new Error("flow nightly already has 1 pending run(s), its queue-limit");
  await s.clock.advance(10_000, () => sch.idle());
  s.sink.refuse = undefined;
  await s.clock.advance(10_000, () => sch.idle());
  t.equal(s.sink.calls.length, 2);
  t.match(s.logs.records.find((r) => r.msg === "timer fired but the run was refused"), { level: 40, err: { message: /queue-limit/ } });
  await sch.stop();
});

t.test("manager: every (flow, ver) has its own schedule; reload restarts them", async (t) => {
  const clock = new FakeClock("2026-03-01T10:00:00Z");
  const sink = new TimedSink(clock);
  const root = tempDir(t);
  const flow = (ver: number, period: number): string => `
  - id: nightly
    ver: ${ver}
    triggers:
      - { name: tick, type: timer, opts: { period: ${period} } }
      - { name: five, type: cron, opts: { cron: "*/5 * * * *", tz: "UTC" } }
    tasks:
      - { name: build, type: exec, listen: trigger.good, opts: { cmd: "true" } }`;
  const m = new TriggerManager({ commands: hostCommands, config: config(`flows:${flow(1, 60)}${flow(2, 120)}`), root, sink, log: captureLog().log, clock });
  t.teardown(() => m.stop());
  m.start();
  await m.ready();
  await clock.advanceTo("2026-03-01T10:05:00Z", () => m.ready());
  const got = (ver: number, trig: string): number => sink.calls.filter((c) => c.ver === ver && c.trigger === trig).length;
  t.same([got(1, "tick"), got(2, "tick"), got(1, "five"), got(2, "five")], [5, 2, 1, 1]);
  m.reload(config(`flows:${flow(1, 30)}`));
  await m.ready();
  t.equal(m.status().schedules.length, 2, "only ver 1 is left");
  await clock.advanceTo("2026-03-01T10:06:00Z", () => m.ready());
  t.equal(got(1, "tick"), 7, "the new period counts from the last fire");
  t.equal(got(2, "tick"), 2);
  await m.stop();
});
