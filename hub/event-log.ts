/**
 * Run events numbered in order and kept in a bounded ring, so that a live client (the
 * dashboard's event stream) that reconnects with its last event id misses nothing still
 * held.
 */
import type { Bus } from "../store/bus.js";
import type { RunEvent } from "./types.js";

export interface NumberedEvent {
  readonly id: number;
  readonly ev: RunEvent;
}

export class EventLog {
  private readonly ring: NumberedEvent[] = [];
  private next = 1;
  private readonly listeners = new Set<(e: NumberedEvent) => void>();
  private readonly off: () => void;

  constructor(
    bus: Bus<RunEvent>,
    private readonly capacity = 20_000,
  ) {
    this.off = bus.subscribe((ev) => this.add(ev));
  }

  private add(ev: RunEvent): void {
    const e = { id: this.next++, ev };
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    for (const l of this.listeners) l(e);
  }

  /** Events after `id` still held; `gap` is true when some were already dropped. */
  since(id: number): { events: NumberedEvent[]; gap: boolean } {
    const first = this.ring[0];
    const gap = first !== undefined && id > 0 && id < first.id - 1;
    return { events: this.ring.filter((e) => e.id > id), gap };
  }

  get lastId(): number {
    return this.next - 1;
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
