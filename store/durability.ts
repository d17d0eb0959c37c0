/**
 * A bench-only switch: with fsync off, writes still go through temp+rename and append, but
 * are not forced to disk. Never set in production; `npm run bench` measures its cost.
 */
let enabled = process.env["FLOE_UNSAFE_NO_FSYNC"] !== "1";

export function setFsync(on: boolean): void {
  enabled = on;
}

export function fsyncEnabled(): boolean {
  return enabled;
}
