/**
 * The cluster's event bus over NATS. A host's own events reach its own subscribers at once,
 * in publish order, whatever NATS is doing; they are also published for the other hosts, to
 * the event stream with JetStream's acknowledgement: an event the stream did not confirm (its
 * leader died, a new one is being elected, the connection dropped) is sent again with the
 * same message id, which the stream's duplicate window drops if the first copy did land. So
 * the history survives the loss of a NATS server when the stream has replicas; live
 * subscribers may see an event twice then, and every reader takes events as idempotent
 * (log lines carry their number). Other hosts' events arrive on one subscription
 * to every event subject of the cluster; the connection's `noEcho` keeps this host's own
 * events from coming back a second time. What arrives is checked by the codec: anything
 * malformed is dropped and logged, never handed to a subscriber.
 */
import type { Subscription } from "@nats-io/transport-node";
import type { Bus } from "./bus.js";
import type { NatsHandle } from "./nats-connect.js";

/** How events of type E travel: their subject, and the check made on arrival. */
export interface WireCodec<E> {
  subject(ev: E): string;
  /** The event, or why it is not one. */
  decode(x: unknown): Decoded<E>;
}

export type Decoded<E> = { readonly ok: true; readonly value: E } | { readonly ok: false; readonly why: string };

export interface NatsBusOptions {
  /**
   * While NATS is away, events are buffered by the client for when it is back; past this
   * many bytes they are only delivered locally (the outage is logged). @defaultValue 8 MiB
   */
  readonly outageBufferBytes?: number;
}

export type NatsBusState = "open" | "closed";

/** How long an unconfirmed event is retried before it is given up (the history misses it). */
const RETRY_FOR_MS = 120_000;

export class NatsBus<E> implements Bus<E> {
  state: NatsBusState = "open";
  private readonly subs = new Set<(ev: E) => void>();
  private readonly sub: Subscription;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  private readonly budget: number;
  /** Bytes handed to the client since NATS went away. */
  private heldBytes = 0;
  private dropping = false;
  private closing: Promise<void> | undefined;
  /** Counts for tests and metrics. */
  readonly stats = { published: 0, received: 0, malformed: 0, dropped: 0, failedPublishes: 0, republished: 0 };
  /** Message ids: unique per host process, so a retry is recognised as the same event. */
  private readonly idPrefix: string;
  private nextId = 0;

  constructor(
    private readonly nats: NatsHandle,
    private readonly codec: WireCodec<E>,
    o: NatsBusOptions = {},
  ) {
    this.budget = o.outageBufferBytes ?? 8 * 1024 * 1024;
    this.idPrefix = `${nats.host}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}.`;
    this.sub = nats.nc.subscribe(nats.names.allEvents, {
      callback: (err, msg) => {
        if (err !== null) {
          nats.log?.warn({ err }, "event subscription failed");
          return;
        }
        this.arrive(msg.subject, msg.data);
      },
    });
  }

  /** Resolves once the server has this bus's subscription (events published after it reach us). */
  async ready(): Promise<void> {
    await this.nats.nc.flush();
  }

  publish(ev: E): void {
    if (this.state === "closed") return;
    this.deliver(ev);
    let subject: string;
    let data: Uint8Array;
    try {
      subject = this.codec.subject(ev);
      data = this.enc.encode(JSON.stringify(ev));
    } catch (e) {
      this.stats.failedPublishes++;
      this.nats.log?.error({ err: e }, "event could not be encoded; delivered locally only");
      return;
    }
    if (!this.nats.connected) {
      if (this.heldBytes + data.length > this.budget) {
        this.stats.dropped++;
        if (!this.dropping) this.nats.log?.warn({ buffered: this.heldBytes }, "NATS is away and its buffer is full: events are delivered on this host only until it is back");
        this.dropping = true;
        return;
      }
      this.heldBytes += data.length;
    } else if (this.heldBytes !== 0 || this.dropping) {
      if (this.dropping) this.nats.log?.warn({ dropped: this.stats.dropped }, "NATS is back; events published while it was away beyond the buffer were not shared");
      this.heldBytes = 0;
      this.dropping = false;
    }
    this.stats.published++;
    void this.send(subject, data, this.idPrefix + (this.nextId++).toString(36), performance.now());
  }

  /** Publishes to the stream until it confirms, the retry time is up, or the bus closes. */
  private async send(subject: string, data: Uint8Array, msgID: string, since: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.nats.js.publish(subject, data, { msgID, timeout: 5000 });
        return;
      } catch (e) {
        if (this.closed() || this.nats.nc.isClosed()) return;
        if (isPermanent(e) || performance.now() - since > RETRY_FOR_MS) {
          // Payload over the server's max_payload, no stream for the subject…: the others miss it.
          this.stats.failedPublishes++;
          this.nats.log?.warn({ err: e, subject }, "event not published to NATS");
          return;
        }
      }
      // A retry waits for the connection, so an outage does not fill the client's buffer with copies.
      await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 5000)));
      while (!this.nats.connected && !this.closed() && !this.nats.nc.isClosed() && performance.now() - since <= RETRY_FOR_MS) await new Promise((r) => setTimeout(r, 250));
      this.stats.republished++;
    }
  }

  /** A method, so the compiler does not narrow `state` across awaits. */
  private closed(): boolean {
    return this.state === "closed";
  }

  subscribe(fn: (ev: E) => void): () => void {
    // A wrapper per call, so subscribing the same function twice gives two subscriptions.
    const w = (ev: E) => fn(ev);
    this.subs.add(w);
    return () => this.subs.delete(w);
  }

  /** Stops listening and delivering. The connection is the NatsHandle's to close. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = "closed";
      this.subs.clear();
      if (!this.sub.isClosed()) this.sub.unsubscribe();
    })();
    return this.closing;
  }

  private arrive(subject: string, data: Uint8Array): void {
    let d: Decoded<E>;
    try {
      d = this.codec.decode(JSON.parse(this.dec.decode(data)));
    } catch {
      d = { ok: false, why: "not JSON" };
    }
    if (!d.ok) return this.malformed(subject, d.why);
    const ev = d.value;
    // The subject is part of the message: an event filed under another run's subject is not trusted.
    let expected: string;
    try {
      expected = this.codec.subject(ev);
    } catch {
      expected = "";
    }
    if (expected !== subject) return this.malformed(subject, "its subject does not match its content");
    this.stats.received++;
    this.deliver(ev);
  }

  private malformed(subject: string, why: string): void {
    this.stats.malformed++;
    this.nats.log?.warn({ subject, why }, "malformed event dropped");
  }

  private deliver(ev: E): void {
    for (const fn of this.subs) {
      try {
        fn(ev);
      } catch (e) {
        // A subscriber's fault must not stop delivery to the others, nor the publisher.
        this.nats.log?.error({ err: e }, "event subscriber failed");
      }
    }
  }
}

/** Errors a retry cannot fix. */
function isPermanent(e: unknown): boolean {
  const text = e instanceof Error ? `${e.name} ${e.message}` : String(e);
  return /max_payload|maximum payload|MAX_PAYLOAD/i.test(text);
}
