/**
 * The event bus: run, node and log events for live views, delivered in publish order.
 * Embedded hosts use the in-process bus; clusters use NATS (same interface).
 *
 * A host's own events always reach its subscribers. From other hosts, a clustered bus
 * brings the run-level events of every run, and the node events and log lines of a run
 * only while something on this host watches it (`watch`): an open run page, a log being
 * followed, a stream of that run's events.
 */
export interface Bus<E> {
  publish(ev: E): void;
  /** Returns the unsubscribe function. */
  subscribe(fn: (ev: E) => void): () => void;
  /** Brings other hosts' node events and log lines of `run` too, until the watch is stopped. */
  watch(run: string): Watch;
  close(): Promise<void>;
}

export interface Watch {
  /** Resolves once events of the run published from now on reach this host. */
  readonly ready: Promise<void>;
  /** Idempotent. The run's events stop coming once its last watch stopped. */
  stop(): void;
}

const NO_WATCH: Watch = Object.freeze({ ready: Promise.resolve(), stop: () => undefined });

export class LocalBus<E> implements Bus<E> {
  private readonly subs = new Set<(ev: E) => void>();

  publish(ev: E): void {
    for (const fn of this.subs) {
      try {
        fn(ev);
      } catch {
        // A subscriber's fault must not stop delivery to the others, nor the publisher.
      }
    }
  }

  subscribe(fn: (ev: E) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  /** Every event is local here: nothing to bring. */
  watch(): Watch {
    return NO_WATCH;
  }

  async close(): Promise<void> {
    this.subs.clear();
  }
}
