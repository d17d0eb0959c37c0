/**
 * The event bus: run, node and log events for live views, delivered in publish order.
 * Embedded hosts use the in-process bus; clusters use NATS (same interface).
 */
export interface Bus<E> {
  publish(ev: E): void;
  /** Returns the unsubscribe function. */
  subscribe(fn: (ev: E) => void): () => void;
  close(): Promise<void>;
}

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

  async close(): Promise<void> {
    this.subs.clear();
  }
}
