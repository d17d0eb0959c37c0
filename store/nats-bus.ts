/**
 * The cluster's event bus over NATS. A host's own events reach its own subscribers at once,
 * in publish order, whatever NATS is doing; they are also published for the other hosts, to
 * the event stream with JetStream's acknowledgement: an event the stream did not confirm (its
 * leader died, a new one is being elected, the connection dropped) is sent again with the
 * same message id, which the stream's duplicate window drops if the first copy did land. So
 * the history survives the loss of a NATS server when the stream has replicas; live
 * subscribers may see an event twice then, and every reader takes events as idempotent
 * (log lines carry their number).
 *
 * What a host hears from the others is in proportion to what it shows: one subscription to
 * the run-level events of every run (its view of the cluster, children it waits for), and
 * one per watched run to that run's node events and log lines (`watch`, counted: made when
 * the first watcher of the run appears, dropped when the last one goes). The connection's
 * `noEcho` keeps this host's own events from coming back a second time. Log lines go out in
 * batches (store/event-batch.ts); any other event first sends the batches waiting, so the
 * order of a host's events on the wire is their publish order. What arrives is checked by
 * the codec: anything malformed is dropped and logged, never handed to a subscriber.
 */
import type { Subscription } from "@nats-io/transport-node";
import type { Bus, Watch } from "./bus.js";
import { BATCH_MAX_EVENTS, BATCH_WAIT_MS, batchLimitBytes, encodeBatch, unbatch } from "./event-batch.js";
import type { NatsHandle } from "./nats-connect.js";

/** How events of type E travel: their subject, and the check made on arrival. */
export interface WireCodec<E> {
  subject(ev: E): string;
  /** The event, or why it is not one. */
  decode(x: unknown): Decoded<E>;
  /** Events that may share a message with others of their subject (log lines). */
  batchable?(ev: E): boolean;
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

export interface BusCounts {
  readonly published: number;
  readonly sent: number;
  readonly received: number;
  readonly messages: number;
  readonly watchedMessages: number;
  readonly watchedRuns: number;
}

/** Log lines waiting to go out together, per subject. */
interface Pending {
  readonly parts: string[];
  bytes: number;
}

/** A watched run: its subscription and how many watch it. */
interface Watched {
  readonly sub: Subscription;
  count: number;
}

export class NatsBus<E> implements Bus<E> {
  state: NatsBusState = "open";
  private readonly subs = new Set<(ev: E) => void>();
  private readonly sub: Subscription;
  private readonly watched = new Map<string, Watched>();
  private readonly pending = new Map<string, Pending>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly batchBytes: number;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  private readonly budget: number;
  /** Bytes handed to the client since NATS went away. */
  private heldBytes = 0;
  private dropping = false;
  private closing: Promise<void> | undefined;
  /**
   * Counts for tests and metrics: events published and received, NATS messages sent
   * (`sent`, a batch counts once) and arrived (`messages`; `watchedMessages` of them on the
   * subscriptions of watched runs).
   */
  readonly stats = { published: 0, received: 0, malformed: 0, dropped: 0, failedPublishes: 0, republished: 0, sent: 0, messages: 0, watchedMessages: 0 };
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
    this.batchBytes = batchLimitBytes(nats.nc.info?.max_payload);
    this.sub = nats.nc.subscribe(nats.names.allRunEvents, {
      callback: (err, msg) => {
        if (err !== null) {
          nats.log?.warn({ err }, "event subscription failed");
          return;
        }
        this.arrive(msg.subject, msg.data);
      },
    });
  }

  watch(run: string): Watch {
    if (this.state === "closed") return { ready: Promise.resolve(), stop: () => undefined };
    let w = this.watched.get(run);
    if (w === undefined) {
      // Run-level events come on the bus's own subscription: skipped here, or they would come twice.
      const runLevel = this.nats.names.event(run, "run");
      const sub = this.nats.nc.subscribe(this.nats.names.runEvents(run), {
        callback: (err, msg) => {
          if (err !== null) {
            this.nats.log?.warn({ err, run }, "run event subscription failed");
            return;
          }
          if (msg.subject === runLevel) return;
          this.stats.watchedMessages++;
          this.arrive(msg.subject, msg.data);
        },
      });
      w = { sub, count: 0 };
      this.watched.set(run, w);
    }
    w.count++;
    const held = w;
    let stopped = false;
    return {
      ready: this.nats.nc.flush().catch(() => undefined),
      stop: () => {
        if (stopped) return;
        stopped = true;
        if (--held.count > 0 || this.watched.get(run) !== held) return;
        this.watched.delete(run);
        if (!held.sub.isClosed()) held.sub.unsubscribe();
      },
    };
  }

  /** The runs watched now (tests and metrics). */
  watchedRuns(): string[] {
    return [...this.watched.keys()];
  }

  /** The counts and how many runs are watched now (metrics). */
  counts(): BusCounts {
    return { ...this.stats, watchedRuns: this.watched.size };
  }

  /** Resolves once the server has this bus's subscription (events published after it reach us). */
  async ready(): Promise<void> {
    await this.nats.nc.flush();
  }

  publish(ev: E): void {
    if (this.state === "closed") return;
    this.deliver(ev);
    let subject: string;
    let text: string;
    try {
      subject = this.codec.subject(ev);
      text = JSON.stringify(ev);
    } catch (e) {
      this.stats.failedPublishes++;
      this.nats.log?.error({ err: e }, "event could not be encoded; delivered locally only");
      return;
    }
    const size = Buffer.byteLength(text);
    if (!this.nats.connected) {
      if (this.heldBytes + size > this.budget) {
        this.stats.dropped++;
        if (!this.dropping) this.nats.log?.warn({ buffered: this.heldBytes }, "NATS is away and its buffer is full: events are delivered on this host only until it is back");
        this.dropping = true;
        return;
      }
      this.heldBytes += size;
    } else if (this.heldBytes !== 0 || this.dropping) {
      if (this.dropping) this.nats.log?.warn({ dropped: this.stats.dropped }, "NATS is back; events published while it was away beyond the buffer were not shared");
      this.heldBytes = 0;
      this.dropping = false;
    }
    this.stats.published++;
    if (this.codec.batchable?.(ev) === true) return this.queue(subject, text, size);
    // Whatever waits goes first: a node's end or the run's must not overtake its last lines.
    this.flushAll();
    this.sendNow(subject, this.enc.encode(text));
  }

  private sendNow(subject: string, data: Uint8Array): void {
    this.stats.sent++;
    void this.send(subject, data, this.idPrefix + (this.nextId++).toString(36), performance.now());
  }

  /** Adds an event to its subject's batch, sending the batch first if it would grow too big. */
  private queue(subject: string, text: string, size: number): void {
    let p = this.pending.get(subject);
    if (p !== undefined && (p.bytes + size + 1 > this.batchBytes || p.parts.length >= BATCH_MAX_EVENTS)) {
      this.flush(subject, p);
      p = undefined;
    }
    if (p === undefined) {
      p = { parts: [], bytes: 2 };
      this.pending.set(subject, p);
    }
    p.parts.push(text);
    p.bytes += size + 1;
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flushAll();
    }, BATCH_WAIT_MS);
  }

  private flush(subject: string, p: Pending): void {
    this.pending.delete(subject);
    this.sendNow(subject, this.enc.encode(encodeBatch(p.parts)));
  }

  /** Sends every batch waiting, in the order their first lines came. */
  private flushAll(): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    for (const [subject, p] of [...this.pending]) this.flush(subject, p);
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
      // Lines still waiting for their batch go out (the connection is closed after the bus).
      this.flushAll();
      this.state = "closed";
      this.subs.clear();
      if (!this.sub.isClosed()) this.sub.unsubscribe();
      for (const w of this.watched.values()) if (!w.sub.isClosed()) w.sub.unsubscribe();
      this.watched.clear();
    })();
    return this.closing;
  }

  private arrive(subject: string, data: Uint8Array): void {
    this.stats.messages++;
    let body: readonly unknown[];
    try {
      body = unbatch(JSON.parse(this.dec.decode(data)));
    } catch {
      return this.malformed(subject, "not JSON");
    }
    for (const x of body) this.arriveOne(subject, x);
  }

  private arriveOne(subject: string, x: unknown): void {
    let d: Decoded<E>;
    try {
      d = this.codec.decode(x);
    } catch {
      d = { ok: false, why: "could not be read" };
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
