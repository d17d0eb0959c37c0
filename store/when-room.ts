/**
 * Store writes that must happen, on a disk that may be full for a while: a run's end is
 * retried until the disk takes it (ENOSPC, EDQUOT), so a full disk pauses the end instead of
 * leaving the run active forever with its locks held. Other errors are thrown at once.
 */
import { errorCode } from "../flows/errors.js";
import { retry } from "./backoff.js";

const FULL = new Set(["ENOSPC", "EDQUOT"]);

export function isDiskFull(e: unknown): boolean {
  const code = errorCode(e);
  return code !== undefined && FULL.has(code);
}

/**
 * Runs `fn` until it does not fail for want of room, backing off from 200 ms to 5 s;
 * `onFull` hears of the first such failure, and `giveUp()` (checked before each retry)
 * ends the wait by throwing the last error.
 */
export function whenRoom<T>(fn: () => Promise<T>, onFull: (e: unknown) => void, giveUp: () => boolean = () => false): Promise<T> {
  return retry(fn, {
    firstMs: 200,
    maxMs: 5000,
    retryIf: (e) => isDiskFull(e) && !giveUp(),
    onRetry: (e, attempt) => {
      if (attempt === 1) onFull(e);
    },
  });
}
