/**
 * A bench-only switch: with fsync off, writes still go through temp+rename and append (a
 * process crash still leaves whole files and whole lines), but are not forced to disk, so a
 * power cut can lose them. Never off in production; `npm run bench` measures its cost.
 * `FLOE_UNSAFE_NO_FSYNC=1` in the environment turns it off from the start.
 */
let enabled = process.env["FLOE_UNSAFE_NO_FSYNC"] !== "1";

export function setFsync(on: boolean): void {
  enabled = on;
}

export function fsyncEnabled(): boolean {
  return enabled;
}
