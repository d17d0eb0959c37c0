/**
 * The `timer` node type: waits, then ends good. floe's was a no-op that returned at once
 * although its README said it waited (reference §2, §9.23).
 *
 * Opts: `duration` (`500ms`, `90s`, `2m`, `1h30m`, or a number of seconds), or floe's
 * `period` (seconds). The wait ends early, status -1 with the reason, when the task is
 * cancelled or times out.
 */
import type { TaskRunner } from "./contract.js";
import { formatDuration, parseDuration } from "./duration.js";
import { abortReason, sysWriter } from "./task-util.js";

/** setTimeout's ceiling (~24.8 days); longer waits are taken in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export const runTimer: TaskRunner = async (req) => {
  const sys = sysWriter(req);
  const key = req.opts["duration"] !== undefined ? "duration" : "period";
  const raw = req.opts[key];
  if (raw === undefined) return { status: 1, error: "timer needs opts duration (e.g. 90s) or period (seconds)", outputs: {} };
  const ms = parseDuration(raw);
  if (ms === undefined) {
    return { status: 1, error: `timer opts.${key} ${JSON.stringify(raw)} is not a positive duration (e.g. 500ms, 90s, 1h30m)`, outputs: {} };
  }
  sys(`waiting ${formatDuration(ms)}`);
  const end = performance.now() + ms;
  while (!req.signal.aborted && performance.now() < end) {
    await sleep(Math.min(end - performance.now(), MAX_TIMEOUT_MS), req.signal);
  }
  if (req.signal.aborted) {
    const reason = abortReason(req.signal);
    sys(`stopped: ${reason}`);
    return { status: -1, reason, outputs: {} };
  }
  sys(`waited ${formatDuration(ms)}`);
  return { status: 0, outputs: {} };
};

/** Resolves after `ms` or on abort, whichever is first; leaves no timer or listener behind. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
