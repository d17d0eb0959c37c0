/**
 * When a cluster host's periodic work happens: its lease renewal and what rides on it
 * (Lease.onTick: cluster sync, on-update's look, the safety pass).
 *
 * Redis spends more CPU waking up for a request than serving a small one. Measured on this
 * machine (2 cores), eight clients renewing leases twice a second, each at its own phase, cost
 * Redis 0.36 % of a core over idle; the same renewals sent on the same instants, 0.12 %: Redis
 * reads them in one wake-up and writes its append-only file once. So hosts tick on instants
 * of the wall clock — multiples of the period, shifted by the host's phase — and a cluster's
 * hosts tick together, in groups of up to TICK_GROUP hosts spread over the period: more at
 * once would queue behind one another (500 hosts: 16 groups, 31 ms apart at a 500-ms period).
 * Clocks a few milliseconds apart (NTP) only spread a group's arrivals a little; a clock
 * that steps moves one tick, never stretches the gap past what nextTickAt allows.
 */
import { fnv1a } from "./fnv1a.js";

/** At most this many hosts (by the registry's count) tick on one instant. */
export const TICK_GROUP = 32;

/**
 * Where in the period `host` ticks, as a fraction of it: 0 for every host of a cluster of up
 * to TICK_GROUP hosts; past that, the host's group (by a hash of its name) of ⌈hosts ÷
 * TICK_GROUP⌉ spread evenly. `hosts` undefined (no heartbeat yet): 0.
 */
export function tickPhase(host: string, hosts: number | undefined): number {
  const groups = Math.max(1, Math.ceil((hosts ?? 1) / TICK_GROUP));
  return (fnv1a(host) % groups) / groups;
}

/**
 * The wall-clock time (ms) of the next tick: the first instant at `phase` of a period after
 * both `nowMs` and half a period past the last tick's instant. While the phase holds, ticks
 * are exactly a period apart (a timer that fires a moment early or late does not make two in
 * a row or shift the next); when it moves (the cluster grew past a group), one gap is
 * between half a period and one and a half. A wall clock stepped back or forward: the first
 * instant after now, within a period.
 */
export function nextTickAt(nowMs: number, lastTickAt: number | undefined, periodMs: number, phase: number): number {
  const offset = Math.round(phase * periodMs);
  // A last tick ahead of now by more than a period: the wall clock stepped back. Counting
  // from it would hold the next tick back by the step; the first instant from now is taken.
  const last = lastTickAt !== undefined && lastTickAt - nowMs <= periodMs ? lastTickAt : undefined;
  const from = last === undefined ? nowMs : Math.max(nowMs, last + periodMs / 2);
  const into = (((from - offset) % periodMs) + periodMs) % periodMs;
  return from - into + periodMs;
}
