/**
 * mulberry32: a tiny seeded generator of floats in [0, 1), the one source of the seeded
 * randomness of the chaos suite (test/chaos/prng.ts), the fuzz tests (test/fuzz/prng.ts),
 * which build their own helpers on it, the dispatch bench's inputs and the cluster-state race tests.
 */
export function mulberry32Floats(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
