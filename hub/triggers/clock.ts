/**
 * Time as triggers see it. Schedules and pollers take a Clock so tests can move time by
 * hours in a millisecond instead of waiting for it; hosts give them the cluster's clock
 * (store/clock.ts), so a host whose wall clock is stepped fires on the cluster's schedule.
 */
import { clusterClock, type TimerHandle } from "../../store/clock.js";

export type { TimerHandle };

export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`; long waits may wake early (callers re-check `now()`). */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

/** The cluster's clock: the host's own wall clock, re-anchored and never backwards, or Redis's TIME in a cluster. */
export const systemClock: Clock = clusterClock;
