/**
 * Order statistics for the benchmarks, and the shape every measure reports in. Figures are
 * compared as ratios against a baseline measured in the same run: on a shared, noisy
 * machine absolute times drift from one run to the next, ratios much less.
 */

export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

/** The nearest-rank percentile of ascending `sorted` (p in 0..100); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

export function median(xs: readonly number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), mean: mean(s), min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN };
}

/**
 * One line of the results table. `value` is the headline (a rate, a size) when the figure
 * is not a distribution; `dist` the p50/p99 when it is. The baseline is measured in the
 * same run; `ratio` is floe ÷ baseline on the headline (or on p50).
 */
export interface Figure {
  readonly id: string;
  readonly what: string;
  readonly unit: string;
  readonly value?: number;
  readonly dist?: Summary;
  readonly baseline?: { readonly what: string; readonly value?: number; readonly dist?: Summary };
  readonly ratio?: number;
  /** Which clock the figure was taken with, and from which side. */
  readonly clock: string;
  readonly note?: string;
}

/** floe ÷ baseline on the headline number of each (p50 for distributions). */
export function ratioOf(floe: { value?: number; dist?: Summary }, base: { value?: number; dist?: Summary }): number | undefined {
  const a = floe.value ?? floe.dist?.p50;
  const b = base.value ?? base.dist?.p50;
  if (a === undefined || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return undefined;
  return a / b;
}

/** A wall-clock time in milliseconds with sub-millisecond resolution (realtime epoch, like `date +%s%N`). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** What run.ts hands every measure. */
export interface BenchOptions {
  /** Small counts: a smoke run of a few seconds per measure. */
  readonly quick: boolean;
  /** Run slots of the benchmarked host, and the concurrency of the spawn baseline. */
  readonly slots: number;
  /** Progress lines (stderr), so a long measure shows it is alive. */
  readonly progress: (line: string) => void;
}

/** `ratio` only when there is one (exactOptionalPropertyTypes: no `ratio: undefined`). */
export function optionalRatio(r: number | undefined): { ratio?: number } {
  return r === undefined ? {} : { ratio: r };
}
