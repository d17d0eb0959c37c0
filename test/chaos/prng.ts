/**
 * A tiny seeded PRNG (mulberry32), so a chaos run's workload and fault schedule come back
 * the same from the same seed. Separate streams (workload, faults) are derived from the one
 * seed so that drawing more of one never shifts the other.
 */
import { mulberry32Floats } from "../helpers/mulberry32.js";

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  /** True with probability p. */
  chance(p: number): boolean;
}

export function mulberry32(seed: number): Rng {
  const next = mulberry32Floats(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    between: (lo, hi) => lo + next() * (hi - lo),
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error("pick from nothing");
      return items[Math.floor(next() * items.length)] as T;
    },
    chance: (p) => next() < p,
  };
}

/** An independent stream for `name`, derived from `seed`. */
export function stream(seed: number, name: string): Rng {
  let h = seed >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1) >>> 0;
  return mulberry32(h);
}
