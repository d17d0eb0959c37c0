/**
 * Sizes as people write them on a command line: `1GiB`, `512MiB`, `500MB`, `2g`, or a bare
 * number of bytes. Binary units (KiB, MiB, GiB, TiB, and k/m/g/t alone, as nats-server and
 * most tools read them) are powers of 1024; KB, MB, GB, TB are powers of 1000.
 */
const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024, kib: 1024, kb: 1000,
  m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2,
  g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3,
  t: 1024 ** 4, tib: 1024 ** 4, tb: 1000 ** 4,
};

/** Whole bytes, or undefined when `text` is not a size. */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (m === null) return undefined;
  const unit = UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
