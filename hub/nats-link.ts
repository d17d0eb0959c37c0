/**
 * The cluster link over NATS. History (log lines, a run's events) is read from the JetStream
 * stream the bus's events land in, one stored message at a time with the stream's message
 * get API (`next_by_subj`: the first message on the filter at or after a sequence), so a
 * read creates no consumer: reading nothing new costs one request, and a followed log is read
 * from where the last read stopped. A message holds one event or a batch of log lines
 * (store/event-batch.ts).
 * Host requests are NATS request/reply on `floe.<c>.host.<host>.<verb>`; replies are an
 * envelope that carries a FloeError across, so the asker throws what the answerer threw.
 *
 *   request  { v: 1, payload }
 *   reply    { v: 1, ok: true, value } | { v: 1, ok: false, error: { code, message, status, details? } }
 */
import { isObj } from "./wire-checks.js";
import type { MsgRequest, StoredMsg } from "@nats-io/jetstream";
import { NoRespondersError, RequestError, TimeoutError, type Msg, type Subscription } from "@nats-io/transport-node";
import { unbatch } from "../store/event-batch.js";
import type { NatsHandle } from "../store/nats-connect.js";
import type { ClusterLink, HostVerb } from "./cluster-link.js";
import { coerceError, errorMessage, FloeError, type ErrorCode } from "./errors.js";
import { parseRunEvent, runOf } from "./run-event-wire.js";
import type { LogLine, RunEvent } from "./types.js";

export interface NatsLinkOptions {
  /** How long `ask` waits for a reply. @defaultValue 10000 */
  readonly askTimeoutMs?: number;
  /** How long reading a run's history may take. @defaultValue 10000 */
  readonly historyTimeoutMs?: number;
  /** Requests answered at once; more wait their turn. @defaultValue 16 */
  readonly concurrency?: number;
  /** Requests allowed to wait; beyond this the asker is told this host is busy. @defaultValue 1000 */
  readonly queueLimit?: number;
}

type Handler = (payload: unknown) => Promise<unknown>;

/** Where a node's log was last read: its line seq and the stream sequence of that line. */
type Cursor = { readonly line: number; readonly stream: number };

/** Logs remembered for following (oldest forgotten first). */
const MAX_CURSORS = 1000;

export type NatsLinkState = "open" | "closed";

/**
 * Every code of hub/errors.ts: a code from the wire is only trusted if it is one of these.
 * (A Record, so the compiler says so when a code is added there and not here.)
 */
const CODES: Readonly<Record<ErrorCode, true>> = {
  E_BAD_REQUEST: true,
  E_UNAUTHORIZED: true,
  E_FORBIDDEN: true,
  E_NOT_FOUND: true,
  E_FLOW_NOT_FOUND: true,
  E_ARTIFACT_NOT_FOUND: true,
  E_RUN_NOT_FOUND: true,
  E_NODE_NOT_FOUND: true,
  E_TRIGGER_NOT_FOUND: true,
  E_NOT_A_DATA_NODE: true,
  E_DATA_NOT_ENABLED: true,
  E_FORM_INVALID: true,
  E_RUN_ENDED: true,
  E_QUEUE_FULL: true,
  E_RUN_NOT_ACTIVE: true,
  E_RUN_NOT_ENDED: true,
  E_RERUN_FROM_UNKNOWN: true,
  E_RERUN_FROM_TRIGGER: true,
  E_RERUN_FROM_UNREACHED: true,
  E_RERUN_NOTHING_FAILED: true,
  E_FLOW_INVALID: true,
  E_FLOW_FILE: true,
  E_STOPPING: true,
  E_NOT_STARTED: true,
  E_TOO_LARGE: true,
  E_RATE_LIMITED: true,
  E_SIGNATURE: true,
  E_UNAVAILABLE: true,
  E_INTERNAL: true,
};

function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === "string" && Object.hasOwn(CODES, x);
}

export class NatsLink implements ClusterLink {
  state: NatsLinkState = "open";
  private readonly handlers = new Map<HostVerb, Handler>();
  private readonly subs: Subscription[] = [];
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  private readonly askTimeoutMs: number;
  private readonly historyTimeoutMs: number;
  private readonly concurrency: number;
  private readonly queueLimit: number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly cursors = new Map<string, Cursor>();

  constructor(
    private readonly nats: NatsHandle,
    o: NatsLinkOptions = {},
  ) {
    this.askTimeoutMs = o.askTimeoutMs ?? 10_000;
    this.historyTimeoutMs = o.historyTimeoutMs ?? 10_000;
    this.concurrency = o.concurrency ?? 16;
    this.queueLimit = o.queueLimit ?? 1000;
  }

  // --- history ---------------------------------------------------------------------------

  async logs(run: string, node: string, attempt: number, after: number, limit: number): Promise<LogLine[]> {
    const out: LogLine[] = [];
    if (limit <= 0) return out;
    // A log being followed is read from where the last read stopped, not from its start.
    // Each run attempt numbers its lines from 1, so a cursor is per attempt.
    const key = `${run}\0${node}\0${attempt}`;
    const cursor = this.cursors.get(key);
    const from = cursor !== undefined && cursor.line <= after ? cursor.stream + 1 : 1;
    let last: Cursor | undefined;
    await this.history(this.nats.names.nodeLogs(run, node), from, (evs, stream) => {
      let maxLine = 0;
      for (const ev of evs) {
        if (ev.type !== "log" || ev.ref.run !== run || ev.node !== node || ev.line.attempt !== attempt) continue;
        // A batch cut short by the limit is read again next time: the cursor stays before it.
        if (out.length >= limit) return false;
        maxLine = Math.max(maxLine, ev.line.seq);
        if (ev.line.seq > after) out.push(ev.line);
      }
      if (maxLine > 0) last = { line: Math.max(maxLine, last?.line ?? 0), stream };
      return out.length < limit;
    });
    // A line re-sent after a NATS failover lands after later ones: hand them out in their order.
    out.sort((a, b) => a.seq - b.seq);
    if (last !== undefined) {
      this.cursors.delete(key);
      this.cursors.set(key, last);
      if (this.cursors.size > MAX_CURSORS) this.cursors.delete(this.cursors.keys().next().value as string);
    }
    return out;
  }

  async runEvents(run: string): Promise<RunEvent[]> {
    const out: RunEvent[] = [];
    await this.history(this.nats.names.runEvents(run), 1, (evs) => {
      // A very long id shares its subject's hashed token only by accident: the body decides.
      for (const ev of evs) if (runOf(ev) === run) out.push(ev);
      return true;
    });
    return out;
  }

  /**
   * Feeds the stream's messages on `filter` from stream sequence `from` to `take` (the
   * events of each, with its sequence), in order, until it returns false or none are left.
   */
  private async history(filter: string, from: number, take: (evs: RunEvent[], stream: number) => boolean): Promise<void> {
    const { jsm, names, log } = this.nats;
    if (!this.nats.connected) throw new FloeError("E_UNAVAILABLE", "the cluster's run history can not be read: NATS is not connected");
    const until = performance.now() + this.historyTimeoutMs;
    for (let seq = from; ; ) {
      if (performance.now() > until) throw new FloeError("E_UNAVAILABLE", `the cluster's run history did not answer within ${this.historyTimeoutMs} ms`);
      let m: StoredMsg | null;
      try {
        m = await jsm.streams.getMessage(names.stream, nextOn(filter, seq));
      } catch (e) {
        throw new FloeError("E_UNAVAILABLE", `the cluster's run history could not be read: ${errorMessage(e)}`, { cause: e });
      }
      if (m === null) return;
      const evs: RunEvent[] = [];
      for (const x of this.decode(m)) {
        const d = parseRunEvent(x);
        if (d.ok) evs.push(d.value);
        else log?.warn({ subject: m.subject, seq: m.seq, why: d.why }, "malformed event in the history skipped");
      }
      if (!take(evs, m.seq)) return;
      seq = m.seq + 1;
    }
  }

  /** The events a stored message holds (one, or a batch of log lines). */
  private decode(m: StoredMsg): readonly unknown[] {
    try {
      return unbatch(JSON.parse(this.dec.decode(m.data)));
    } catch {
      this.nats.log?.warn({ subject: m.subject, seq: m.seq }, "an entry of the history is not JSON; skipped");
      return [];
    }
  }

  // --- requests --------------------------------------------------------------------------

  async ask(host: string, verb: HostVerb, payload: unknown): Promise<unknown> {
    if (this.state === "closed") throw new FloeError("E_STOPPING", "this host is stopping");
    if (host === this.nats.host) {
      // noEcho keeps a host from hearing its own requests: answer in-process, same envelope.
      const handler = this.handlers.get(verb);
      if (handler === undefined) throw unreachable(host, `it does not answer "${verb}" requests`);
      const copy: unknown = payload === undefined ? undefined : JSON.parse(JSON.stringify(payload));
      return unwrap(host, JSON.parse(encodeReply(await this.answer(handler, copy))));
    }
    // While NATS is away the request would only wait for its timeout.
    if (!this.nats.connected) throw unreachable(host, "this host is not connected to NATS");
    let msg: Msg;
    try {
      msg = await this.nats.nc.request(this.nats.names.hostVerb(host, verb), this.enc.encode(JSON.stringify({ v: 1, payload })), { timeout: this.askTimeoutMs });
    } catch (e) {
      if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) throw unreachable(host, "no such host is connected to the cluster", e);
      if (e instanceof TimeoutError) throw unreachable(host, `it did not answer within ${this.askTimeoutMs / 1000} s`, e);
      throw unreachable(host, errorMessage(e), e);
    }
    let body: unknown;
    try {
      body = JSON.parse(this.dec.decode(msg.data));
    } catch {
      body = undefined;
    }
    return unwrap(host, body);
  }

  serve(verb: HostVerb, handler: (payload: unknown) => Promise<unknown>): void {
    if (this.state === "closed") throw new Error("serve() after close()");
    if (this.handlers.has(verb)) throw new Error(`"${verb}" requests are already served`);
    this.handlers.set(verb, handler);
    const sub = this.nats.nc.subscribe(this.nats.names.hostVerb(this.nats.host, verb), {
      callback: (err, msg) => {
        if (err !== null) {
          this.nats.log?.warn({ err, verb }, "request subscription failed");
          return;
        }
        void this.onRequest(msg, handler);
      },
    });
    this.subs.push(sub);
  }

  /** Stops answering requests. The connection is the NatsHandle's to close. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    for (const s of this.subs) if (!s.isClosed()) s.unsubscribe();
    this.subs.length = 0;
  }

  private async onRequest(msg: Msg, handler: Handler): Promise<void> {
    let reply: Reply;
    if (this.active >= this.concurrency && this.waiting.length >= this.queueLimit) {
      reply = failure(new FloeError("E_UNAVAILABLE", `host "${this.nats.host}" is busy; try again`));
    } else {
      await this.acquire();
      try {
        let req: unknown;
        try {
          req = JSON.parse(this.dec.decode(msg.data));
        } catch {
          req = undefined;
        }
        reply =
          isObj(req) && req["v"] === 1
            ? await this.answer(handler, req["payload"])
            : failure(new FloeError("E_BAD_REQUEST", "malformed request: expected { v: 1, payload }"));
      } finally {
        this.release();
      }
    }
    try {
      msg.respond(this.enc.encode(encodeReply(reply)));
    } catch (e) {
      this.nats.log?.warn({ err: e, subject: msg.subject }, "could not reply to a request");
    }
  }

  private async acquire(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    // The slot is handed over by release(), never counted twice.
    await new Promise<void>((r) => this.waiting.push(r));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.active--;
  }

  private async answer(handler: Handler, payload: unknown): Promise<Reply> {
    try {
      return { v: 1, ok: true, value: await handler(payload) };
    } catch (e) {
      if (e instanceof FloeError) return failure(e);
      this.nats.log?.error({ err: coerceError(e) }, "request handler failed");
      return failure(new FloeError("E_INTERNAL", `internal error on host "${this.nats.host}"`));
    }
  }
}

type Reply =
  | { readonly v: 1; readonly ok: true; readonly value: unknown }
  | { readonly v: 1; readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string; readonly status: number; readonly details?: unknown } };

/** JSON of a reply; a value that can not be sent becomes an internal error. */
function encodeReply(r: Reply): string {
  try {
    return JSON.stringify(r);
  } catch (e) {
    return JSON.stringify(failure(new FloeError("E_INTERNAL", `the answer could not be sent: ${errorMessage(e)}`)));
  }
}

function failure(e: FloeError): Reply {
  return { v: 1, ok: false, error: { code: e.code, message: e.message, status: e.status, ...(e.details !== undefined ? { details: e.details } : {}) } };
}

/** The value of a reply, or the FloeError it carries. */
function unwrap(host: string, body: unknown): unknown {
  const bad = () => new FloeError("E_INTERNAL", `host "${host}" sent a malformed reply`);
  if (!isObj(body)) throw bad();
  const r = body;
  if (r["v"] !== 1) throw bad();
  if (r["ok"] === true) return r["value"];
  if (r["ok"] !== false) throw bad();
  const err = r["error"];
  if (!isObj(err)) throw bad();
  const { code, message, details } = err;
  if (typeof message !== "string") throw bad();
  if (!isErrorCode(code)) throw new FloeError("E_INTERNAL", `host "${host}" answered with an unknown error ${JSON.stringify(code)}: ${message}`);
  throw new FloeError(code, message, details !== undefined ? { details } : {});
}

/**
 * The first message on `filter` at or after `seq`. nats-server answers `next_by_subj` on its
 * message get API since 2.9; the client's type for that API names only the other forms.
 */
function nextOn(filter: string, seq: number): MsgRequest {
  const q: { seq: number; next_by_subj: string } = { seq, next_by_subj: filter };
  return q as MsgRequest;
}

function unreachable(host: string, why: string, cause?: unknown): FloeError {
  return new FloeError("E_UNAVAILABLE", `host "${host}" is unreachable: ${why}`, cause !== undefined ? { cause } : {});
}
