/**
 * Run events numbered in order and kept in a bounded ring, so that a live client (the
 * dashboard's event stream) that reconnects with its last event id misses nothing still
 * held. In a cluster it holds what the bus brings: the run-level events of every run, and
 * the node events and log lines of runs executing here or watched (`watch`).
 */
import type { Bus, Watch } from "../store/bus.js";
import type { RunEvent } from "./types.js";

export interface NumberedEvent {
  readonly id: number;
  readonly ev: RunEvent;
}

export class EventLog {
  /**
   * A circular buffer: `start` is the slot of the oldest event held, `size` how many are
   * held. Dropping the oldest is O(1); an array trimmed with splice(0, 1) moved all 20,000
   * entries on every event once full (~0.1 ms each, ~20 events per run).
   */
  private readonly ring: (NumberedEvent | undefined)[] = [];
  private start = 0;
  private size = 0;
  private next = 1;
  private readonly listeners = new Set<(e: NumberedEvent) => void>();
  private readonly off: () => void;

  constructor(
    private readonly bus: Bus<RunEvent>,
    private readonly capacity = 20_000,
  ) {
    this.off = bus.subscribe((ev) => this.add(ev));
  }

  private add(ev: RunEvent): void {
    const e = { id: this.next++, ev };
    if (this.capacity < 1) {
      // holds nothing; still numbered and delivered live
    } else if (this.size < this.capacity) {
      this.ring[(this.start + this.size) % this.capacity] = e;
      this.size++;
    } else {
      this.ring[this.start] = e;
      this.start = (this.start + 1) % this.capacity;
    }
    for (const l of this.listeners) l(e);
  }

  /** Events after `id` still held; `gap` is true when some were already dropped. */
  since(id: number): { events: NumberedEvent[]; gap: boolean } {
    const first = this.ring[this.start];
    const gap = first !== undefined && this.size > 0 && id > 0 && id < first.id - 1;
    // Ids are consecutive, so the first event after `id` is at a known offset from the oldest.
    const skip = first === undefined || this.size === 0 ? 0 : Math.min(this.size, Math.max(0, id - first.id + 1));
    const events: NumberedEvent[] = [];
    for (let i = skip; i < this.size; i++) {
      const e = this.ring[(this.start + i) % this.capacity];
      if (e !== undefined) events.push(e);
    }
    return { events, gap };
  }

  get lastId(): number {
    return this.next - 1;
  }

  /** Node events and log lines of `run` from other hosts too, until stopped (bus.watch). */
  watch(run: string): Watch {
    return this.bus.watch(run);
  }

  listen(fn: (e: NumberedEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.off();
    this.listeners.clear();
  }
}
