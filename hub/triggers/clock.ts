/**
 * Time as triggers see it. Schedules and pollers take a Clock so tests can move time by
 * hours in a millisecond instead of waiting for it.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`; long waits may wake early (callers re-check `now()`). */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

/** setTimeout overflows past 2^31-1 ms (~24.8 days) and fires at once; longer waits are split. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    // Unref'd: a pending trigger never keeps a process alive on its own (the server does).
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMEOUT_MS));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
