/**
 * timer and cron triggers: one Schedule per (flow, ver, trigger), each remembering its last
 * fire on disk so a restart neither repeats a fire nor forgets one.
 *
 * The catch-up rule: on start, the next fire is computed from the last persisted fire (or,
 * when it never fired, from when the schedule was first seen). If that time is already past,
 * one or more fires were missed while the host was down: exactly ONE catch-up run starts at
 * once, however many were missed, and the schedule continues with its next slot. A timer's
 * slots are multiples of its period since the epoch, the same on every host. The same holds while
 * running: a wake-up that comes late (a suspended laptop, a blocked event loop) fires once
 * and skips ahead, never a burst.
 *
 * Timers fire every `period` seconds (floe's default 10 when missing); cron uses croner with
 * an optional `tz`. floe fired timers on every host, N runs per tick in an N-host cluster
 * (reference §9.21); here a schedule lives on one host (cluster claim: see the manager).
 */
import { dirname } from "node:path";
import { Cron } from "croner";
import type { Logger } from "pino";
import type { TriggerNode } from "../../flows/model.js";
import { FileTriggerStore, type TriggerStore } from "./store.js";
import { coerceError } from "../errors.js";
import { systemClock, type Clock, type TimerHandle } from "./clock.js";
import { triggerStatePath } from "./refs.js";
import type { TriggerSink } from "./sink.js";

/** floe's timer period when opts.period is missing (reference §2, `timers.go:55-58`). */
export const DEFAULT_PERIOD_S = 10;

export interface ScheduleOptions {
  readonly flow: string;
  readonly ver: number;
  readonly trigger: TriggerNode;
  readonly root: string;
  readonly sink: TriggerSink;
  readonly log: Logger;
  /** @defaultValue {@link systemClock} */
  readonly clock?: Clock;
  /** Where the last fire is kept, and how a fire is claimed once per cluster. @defaultValue files under root */
  readonly store?: TriggerStore;
}

export interface Plan {
  readonly kind: "timer" | "cron";
  /**
   * The first fire strictly after `t` (ms), or undefined when there is none. Fire times are
   * the same on every host (timers on a grid from the epoch), so in a cluster every host
   * wakes for the same slot and the claim lets one of them fire it.
   */
  readonly next: (t: number) => number | undefined;
  /** Trigger opts that go to the run (the schedule's own settings stay behind). */
  readonly runOpts: Readonly<Record<string, unknown>>;
}

/** What a timer or cron trigger means; throws on a cron pattern croner refuses (validation catches it first). */
export function planOf(trigger: TriggerNode): Plan {
  const own = trigger.type === "cron" ? ["cron", "tz"] : ["period"];
  // secret and form never reach a run; the schedule's own settings are not the run's business.
  const runOpts = Object.fromEntries(Object.entries(trigger.opts).filter(([k]) => !own.includes(k) && k !== "secret" && k !== "form"));
  const { period, cron, tz } = trigger.opts;
  if (trigger.type === "cron") {
    if (typeof cron !== "string") throw new Error(`cron trigger "${trigger.id}" has no opts.cron`);
    const c = new Cron(cron, { paused: true, ...(typeof tz === "string" ? { timezone: tz } : {}) });
    return { kind: "cron", next: (t) => c.nextRun(new Date(t))?.getTime(), runOpts };
  }
  const seconds = typeof period === "number" && Number.isInteger(period) && period >= 1 ? period : DEFAULT_PERIOD_S;
  const ms = seconds * 1000;
  return { kind: "timer", next: (t) => (Math.floor(t / ms) + 1) * ms, runOpts };
}

/**
 * The latest fire time in (after, now]: the slot a catch-up run fires for, so that hosts
 * starting at different moments claim the same one. Undefined when there is none.
 */
export function latestDue(plan: Plan, after: number, now: number): number | undefined {
  let at = plan.next(after);
  if (at === undefined || at > now) return undefined;
  // A timer's slots are a grid: jump close to now, then step (cron: step, a bounded number of times).
  if (plan.kind === "timer") {
    const step = (plan.next(at) ?? at) - at;
    if (step > 0) at += Math.floor((now - at) / step) * step;
  }
  for (let i = 0; i < 100_000; i++) {
    const n = plan.next(at);
    if (n === undefined || n > now) return at;
    at = n;
  }
  return at;
}

interface Saved {
  /** When the schedule was first armed: the base for the first fire. */
  readonly since: number;
  readonly last?: number;
}

export interface ScheduleStatus {
  readonly flow: string;
  readonly ver: number;
  readonly trigger: string;
  readonly kind: "timer" | "cron";
  readonly next?: number;
  readonly last?: number;
}

export class Schedule {
  state: "new" | "running" | "stopped" = "new";
  private readonly clock: Clock;
  private readonly store: TriggerStore;
  private readonly log: Logger;
  private readonly plan: Plan;
  private readonly path: string;
  private saved: Saved | undefined;
  private due: number | undefined;
  private timer: TimerHandle | undefined;
  private inFlight: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(private readonly o: ScheduleOptions) {
    this.clock = o.clock ?? systemClock;
    this.store = o.store ?? new FileTriggerStore();
    this.log = o.log.child({ flow: o.flow, ver: o.ver, trigger: o.trigger.id });
    this.plan = planOf(o.trigger);
    this.path = triggerStatePath(o.root, o.flow, o.trigger.id, "last");
  }

  /** Reads the last fire, applies the catch-up rule, arms the next fire. Never throws. */
  start(): Promise<void> {
    if (this.state !== "new") return Promise.resolve();
    this.state = "running";
    const p = this.begin().catch((e: unknown) => this.log.error({ err: coerceError(e) }, "schedule could not start"));
    this.inFlight = p;
    return p;
  }

  private async begin(): Promise<void> {
    const now = this.clock.now();
    const saved = await this.load();
    if (saved === undefined) {
      this.saved = { since: now };
      await this.persist().catch((e: unknown) => this.log.warn({ err: coerceError(e) }, "could not record the schedule's start"));
      this.arm(this.plan.next(now));
      return;
    }
    this.saved = saved;
    const missed = latestDue(this.plan, saved.last ?? saved.since, now);
    if (missed !== undefined && this.state === "running") {
      this.log.info({ missed: new Date(missed).toISOString() }, "schedule missed fires while down; one catch-up run");
      await this.fire(missed);
      this.arm(this.plan.next(now));
      return;
    }
    this.arm(this.plan.next(now));
  }

  private arm(at: number | undefined): void {
    this.due = at;
    if (this.state !== "running") return;
    if (at === undefined) {
      this.log.info("schedule has no further fire times");
      return;
    }
    this.timer = this.clock.setTimer(() => this.wake(at), Math.max(0, at - this.clock.now()));
  }

  private wake(at: number): void {
    this.timer = undefined;
    if (this.state !== "running") return;
    const now = this.clock.now();
    if (now < at) {
      this.arm(at); // an early wake-up: long waits are split into several timers
      return;
    }
    this.inFlight = (async () => {
      await this.fire(at);
      let next = this.plan.next(at);
      // Late by more than one period: skip the missed ones rather than firing a burst.
      if (next !== undefined && next <= this.clock.now()) next = this.plan.next(this.clock.now());
      this.arm(next);
    })().catch((e: unknown) => this.log.error({ err: coerceError(e) }, "schedule failed; it stops firing"));
  }

  /** Starts one run; a refusal (queue full, stopping) is logged. `slot` is recorded as the last fire. */
  private async fire(slot: number): Promise<void> {
    // In a cluster every host wakes for the same slot; one claims it, the others only note it.
    if (!(await this.store.claim(`fire:${this.o.flow}:${this.o.trigger.id}:${slot}`, 24 * 3600_000))) {
      this.saved = { since: this.saved?.since ?? slot, last: slot };
      return;
    }
    try {
      await this.o.sink.trigger({ flow: this.o.flow, ver: this.o.ver, trigger: this.o.trigger.id, opts: this.plan.runOpts, by: this.plan.kind });
      this.log.info({ slot: new Date(slot).toISOString() }, `${this.plan.kind} fired`);
    } catch (e) {
      this.log.warn({ err: coerceError(e), slot: new Date(slot).toISOString() }, `${this.plan.kind} fired but the run was refused`);
    }
    // Recorded after the run is adopted: a crash in between costs one catch-up run, not a lost fire.
    this.saved = { since: this.saved?.since ?? slot, last: slot };
    await this.persist().catch((e: unknown) => this.log.warn({ err: coerceError(e) }, "could not record the last fire"));
  }

  private async load(): Promise<Saved | undefined> {
    let raw: unknown;
    try {
      raw = await this.store.read(this.path);
    } catch (e) {
      this.log.warn({ err: coerceError(e) }, "unreadable schedule state; starting afresh");
      return undefined;
    }
    if (raw === null || typeof raw !== "object") return undefined;
    const r = raw as { v?: unknown; since?: unknown; last?: unknown };
    if (r.v !== 1 || typeof r.since !== "number" || !Number.isFinite(r.since)) return undefined;
    return typeof r.last === "number" && Number.isFinite(r.last) ? { since: r.since, last: r.last } : { since: r.since };
  }

  private async persist(): Promise<void> {
    const s = this.saved;
    if (s === undefined) return;
    const body = { v: 1, kind: this.plan.kind, since: s.since, ...(s.last !== undefined ? { last: s.last, lastAt: new Date(s.last).toISOString() } : {}) };
    await this.store.write(this.path, body);
  }

  /** Resolves when no start or fire is in progress (tests step a fake clock with it). */
  async idle(): Promise<void> {
    while (this.inFlight !== undefined) {
      const p = this.inFlight;
      await p;
      if (this.inFlight === p) this.inFlight = undefined;
    }
  }

  status(): ScheduleStatus {
    return {
      flow: this.o.flow,
      ver: this.o.ver,
      trigger: this.o.trigger.id,
      kind: this.plan.kind,
      ...(this.due !== undefined && this.state === "running" ? { next: this.due } : {}),
      ...(this.saved?.last !== undefined ? { last: this.saved.last } : {}),
    };
  }

  /** Idempotent: no further fires; a fire in progress completes (its run is adopted and recorded). */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.state = "stopped";
      this.timer?.cancel();
      this.timer = undefined;
      await this.idle();
    })();
    return this.stopPromise;
  }
}
