/**
 * The cluster's clock: the time every host of a cluster agrees on, whatever its own wall
 * clock says. A host's wall clock can be stepped by minutes (a bad NTP sync, an operator,
 * a VM restored from a snapshot); its monotonic clock can not. So this clock reads the
 * monotonic clock and adds an anchor taken from a source: Redis's `TIME` in a cluster (the
 * same source as leases and fencing), the host's wall clock on its own. It re-anchors
 * every `everyMs`, and what it returns never goes backwards: when a source steps back, its
 * time stands still until the source catches up, so no duration comes out negative.
 *
 * Timers and cron fire by it (hub/triggers/schedule.ts: one slot per tick on the cluster's
 * schedule, claimed once) and runs, nodes and log lines are stamped with it, so a run's
 * times are comparable across the hosts it moved through. Elapsed times (timeouts, retry
 * windows, progress) are measured on the monotonic clock, performance.now(), instead.
 */
import type { Logger } from "pino";

export interface TimerHandle {
  cancel(): void;
}

/** setTimeout overflows past 2^31-1 ms (~24.8 days) and fires at once; longer waits are split (callers re-check now()). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Where the clock takes its time from: epoch milliseconds, or a rejection when it can not say. */
export type TimeSource = () => Promise<number>;

/** A source step larger than this is logged: a host whose wall clock jumps should be looked at. */
const STEP_WORTH_SAYING_MS = 1000;

export class ClusterClock {
  private base = Date.now();
  private mono = performance.now();
  private last = 0;
  private source: TimeSource | undefined;
  private timer: NodeJS.Timeout | undefined;
  private log: Logger | undefined;

  now(): number {
    const t = Math.round(this.base + (performance.now() - this.mono));
    if (t > this.last) this.last = t;
    return this.last;
  }

  /**
   * Calls `fn` once after `ms` (long waits may wake early). setTimeout runs on the monotonic
   * clock: a wall-clock step neither hastens nor delays it. Unref'd: a pending timer never
   * keeps a process alive on its own.
   */
  setTimer(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMEOUT_MS));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  }

  /**
   * Takes the time from `source` from now on (re-anchored every `everyMs`); the first
   * anchor is taken before this resolves, or the wall clock stays the anchor if the source
   * does not answer (a cluster whose Redis is away starts anyway; the next try fixes it).
   */
  async follow(source: TimeSource, o: { everyMs?: number; log?: Logger } = {}): Promise<void> {
    this.stop();
    this.source = source;
    this.log = o.log;
    await this.anchor();
    const every = o.everyMs ?? 15_000;
    this.timer = setInterval(() => void this.anchor(), every);
    this.timer.unref();
  }

  /** Back to the host's wall clock, as on a host of its own. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.source = undefined;
  }

  /** One reading of the source, placed halfway through the round trip that fetched it. */
  async anchor(): Promise<void> {
    const source = this.source;
    if (source === undefined) return;
    const sent = performance.now();
    let t: number;
    try {
      t = await source();
    } catch {
      return; // keep counting from the last anchor: the monotonic clock runs on
    }
    const back = performance.now();
    const before = this.base + (back - this.mono);
    this.mono = (sent + back) / 2;
    this.base = t;
    const step = this.base + (back - this.mono) - before;
    if (Math.abs(step) >= STEP_WORTH_SAYING_MS) this.log?.warn({ stepMs: Math.round(step) }, "the cluster clock moved: this host's monotonic clock and the cluster's time disagreed");
  }
}

/**
 * The clock of this process. On a host of its own it follows the wall clock (re-anchored,
 * never backwards); cmd/serve.ts makes it follow Redis's TIME in a cluster.
 */
export const clusterClock = new ClusterClock();

/** Epoch milliseconds on the cluster's clock: the time runs, nodes and events are stamped with. */
export function now(): number {
  return clusterClock.now();
}
