/**
 * Seeded randomness for the fuzz tests: mulberry32, a seed printed by every test and
 * overridden by FLOE_FUZZ_SEED, so any failure can be replayed exactly:
 *
 *   FLOE_FUZZ_SEED=1234 npx tap test/fuzz/api.test.ts
 *
 * Without it, `npm test` uses one fixed seed, so CI is reproducible from one run to the next;
 * FLOE_FUZZ_SEED=random draws a new seed each run (to cover more ground by hand: the seed in
 * the output says how to repeat a failure).
 */
import type { Test } from "tap";
import { mulberry32Floats } from "../helpers/mulberry32.js";

export interface Rng {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number;
  bool(p?: number): boolean;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Buffer;
  /** A short string of random code points: ASCII, controls, Latin-1, BMP, astral. */
  text(max: number): string;
}

export function mulberry32(seed: number): Rng {
  const next = mulberry32Floats(seed);
  const int = (n: number): number => Math.floor(next() * n);
  const rng: Rng = {
    seed,
    next,
    int,
    range: (lo, hi) => lo + int(hi - lo + 1),
    bool: (p = 0.5) => next() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error("pick from an empty list");
      return items[int(items.length)] as T;
    },
    bytes(n) {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
    text(max) {
      let s = "";
      const n = int(max + 1);
      for (let i = 0; i < n; i++) {
        const kind = int(6);
        if (kind <= 2) s += String.fromCharCode(0x20 + int(0x5f));
        else if (kind === 3) s += String.fromCharCode(int(0x20));
        else if (kind === 4) s += String.fromCharCode(0x80 + int(0xd780)); // below the surrogates
        else s += String.fromCodePoint(0x10000 + int(0x10000));
      }
      return s;
    },
  };
  return rng;
}

/** The seed of `npm test`. */
const DEFAULT_SEED = 20261201;

/** Chosen once per test file, so every sub-test prints the same seed. */
const baseSeed = ((): number => {
  const env = process.env["FLOE_FUZZ_SEED"];
  if (env === "random") return Math.floor(Math.random() * 0xffffffff) >>> 0;
  return env !== undefined && env !== "" ? Number.parseInt(env, 10) >>> 0 : DEFAULT_SEED;
})();

/**
 * The seed of one fuzz test: FLOE_FUZZ_SEED when set, else the fixed default. Printed as a tap
 * comment, with the command that repeats it.
 */
export function fuzzRng(t: Test, file: string, salt = 0): Rng {
  const base = baseSeed;
  t.comment(`fuzz seed ${base} (repeat: FLOE_FUZZ_SEED=${base} npx tap ${file})`);
  // Each sub-test gets its own stream from the one seed, so sub-tests can be replayed alone.
  return mulberry32((base + Math.imul(salt, 0x9e3779b1)) >>> 0);
}

/** Strings that have broken parsers, paths, shells, subjects and keys before. */
export const HOSTILE: readonly string[] = [
  "../",
  "../../etc/passwd",
  "..",
  ".",
  "%2e%2e%2f",
  "..%2f..%2f",
  "\u0000",
  "a\u0000b",
  "*",
  ">",
  "a.b",
  "a.*.>",
  "a:b",
  "floe:x",
  "$(touch /tmp/floe-pwned)",
  "`id`",
  "; touch floe-fuzz-canary",
  "{{ws}}",
  "${HOME}",
  "\r\n",
  "\t",
  "\u2028",
  "\ufeff",
  "ü",
  "😀",
  "\ud800",
  "<script>alert(1)</script>",
  "' OR 1=1 --",
  '"',
  "'",
  "\\",
  "&a [*a]",
  "!!js/function 'x'",
  "__proto__",
  "constructor",
  "x".repeat(10_000),
];
