/**
 * Exponential backoff for the loops that retry until something comes back: a full disk
 * (store/when-room.ts), Redis reconnecting (store/redis-connect.ts), a git remote that does
 * not answer (hub/triggers/poll-git.ts), the cluster state while a host waits for it. One
 * rule, so a retry loop says only what it retries and for how long.
 */

export interface Backoff {
  /** The delay before the first retry. */
  readonly firstMs: number;
  /** The longest delay: each delay doubles up to it. */
  readonly maxMs: number;
}

/**
 * The delay before retry `n` (0 for the first): firstMs × 2ⁿ, never above maxMs. The
 * exponent stops at 30 (2³⁰ × 1 ms is 12 days, past any cap), so it never overflows.
 */
export function backoffDelay(n: number, b: Backoff): number {
  return Math.min(b.maxMs, b.firstMs * 2 ** Math.min(Math.max(n, 0), 30));
}

export interface RetryOptions extends Backoff {
  /**
   * Whether this failure is worth another try, `delayMs` from now; when not, it is thrown.
   * `attempt` counts the failures so far (1 for the first).
   */
  readonly retryIf: (e: unknown, next: { readonly attempt: number; readonly delayMs: number }) => boolean;
  /** Hears of each failure that will be retried, before the wait. */
  readonly onRetry?: (e: unknown, attempt: number) => void;
}

/** Runs `fn` until it resolves or `retryIf` says a failure is final, backing off in between. */
export async function retry<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const delayMs = backoffDelay(attempt - 1, o);
      if (!o.retryIf(e, { attempt, delayMs })) throw e;
      o.onRetry?.(e, attempt);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
