/**
 * Notifications of run ends (a flow's `notify`): durable pending deliveries, sent with
 * retries and exponential backoff until a 2xx or until `common.notify.retry-for` passed.
 *
 * Sent once per run end, by the host that ended the run: the finisher (or, for a run lost
 * with its host, the one host that reaped it) hands the ended run here before the run is
 * archived. Each delivery's id is the run's id and the entry's index, so a run ended again
 * after a crash (recovery finishing an end that was cut short) finds its deliveries made
 * already and makes none twice; the receiver sees the same `X-Floe-Delivery` on a retry.
 *
 * A delivery lives in one file, `<root>/notify/<state>/<id>.json`, replaced atomically:
 * `pending` until it is sent or given up, then `done` or `failed` (the run page reads them).
 * Pending files are read back at start, so a restart of the host resumes their delivery.
 */
import { mkdir, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { DEFAULT_NOTIFY, type NotifyFormat, type NotifySettings } from "../flows/model.js";
import { readJsonFile, writeFileAtomic } from "../store/atomic-file.js";
import { coerceError, errorMessage } from "./errors.js";
import { notificationBody, runEndedNotice, signBody } from "./notify-body.js";
import type { RunRecord } from "./run-record.js";
import type { TaskSecrets } from "./secrets.js";
import { now as clockNow } from "../store/clock.js";

export type DeliveryState = "pending" | "delivered" | "failed";
const STATES: readonly DeliveryState[] = ["pending", "delivered", "failed"];

export interface DeliveryAttempt {
  readonly at: number;
  readonly ms: number;
  /** The HTTP status, when an answer came. */
  readonly status?: number;
  readonly error?: string;
}

/** One delivery, as kept on disk and shown in a run's detail (without its body and secret). */
export interface Delivery {
  readonly v: 1;
  readonly id: string;
  readonly run: string;
  readonly flow: string;
  readonly url: string;
  readonly format: NotifyFormat;
  /** The name of the secret that signs it. */
  readonly secret?: string;
  readonly body: string;
  readonly createdAt: number;
  readonly state: DeliveryState;
  readonly nextAt: number;
  readonly attempts: readonly DeliveryAttempt[];
}

export interface NotifierOptions {
  readonly root: string;
  readonly host: string;
  readonly secrets: TaskSecrets;
  readonly log: Logger;
  readonly settings: () => NotifySettings | undefined;
  /** The dashboard's address (no trailing slash), for the run page's URL in the summary. */
  readonly pageBase: () => string | undefined;
  /** How long one POST may take. @defaultValue 10 s */
  readonly timeoutMs?: number;
  /** At most this many POSTs at once. @defaultValue 4 */
  readonly concurrency?: number;
}

/** What the hub asks of the notifier (wired by cmd/). */
export interface RunEndListener {
  runEnded(r: RunRecord): Promise<void>;
}

/** Attempts kept per delivery: a receiver down for a day does not grow its file without end. */
const KEPT_ATTEMPTS = 20;

const dirOf = (s: DeliveryState): string => (s === "delivered" ? "done" : s);

export class Notifier implements RunEndListener {
  private readonly pending = new Map<string, Delivery>();
  private readonly inflight = new Map<string, AbortController>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private started = false;
  readonly counts = { sent: 0, failedAttempts: 0, givenUp: 0 };

  constructor(private readonly o: NotifierOptions) {}

  private get dir(): string {
    return join(this.o.root, "notify");
  }

  private file(state: DeliveryState, id: string): string {
    return join(this.dir, dirOf(state), `${id}.json`);
  }

  private settings(): NotifySettings {
    return this.o.settings() ?? DEFAULT_NOTIFY;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Reads the pending deliveries a previous run of the host left, and starts sending. */
  async start(): Promise<void> {
    for (const s of STATES) await mkdir(join(this.dir, dirOf(s)), { recursive: true });
    for (const name of await readdir(join(this.dir, "pending"))) {
      if (!name.endsWith(".json")) continue;
      const id = name.slice(0, -5);
      const d = parseDelivery(await readJsonFile(this.file("pending", id)).catch(() => undefined));
      if (d === undefined) {
        this.o.log.error({ file: name }, "a pending notification can not be read; it is left alone");
        continue;
      }
      // Moved to done or failed by a host that stopped before removing the pending copy.
      if ((await this.find(id, ["delivered", "failed"])) !== undefined) await unlink(this.file("pending", id)).catch(() => undefined);
      else this.pending.set(id, d);
    }
    this.started = true;
    if (this.pending.size > 0) this.o.log.info({ pending: this.pending.size }, "resuming pending notifications");
    this.schedule();
  }

  /** Stops sending; what is pending stays on disk for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const c of this.inflight.values()) c.abort(new Error("the host is stopping"));
    while (this.inflight.size > 0) await new Promise((r) => setTimeout(r, 20));
  }

  /** A run ended here: its deliveries, durable before this resolves. */
  async runEnded(r: RunRecord): Promise<void> {
    const targets = r.flow.notify ?? [];
    if (r.result === undefined || targets.length === 0) return;
    const now = clockNow();
    for (const [i, t] of targets.entries()) {
      if (!t.on.includes(r.result)) continue;
      const id = `${r.ref.run}.${i}`;
      if (this.pending.has(id) || (await this.find(id, STATES)) !== undefined) continue;
      const page = this.o.pageBase();
      const notice = runEndedNotice(r, id, page !== undefined ? `${page}/app/runs/${r.ref.run}` : undefined);
      const body = this.o.secrets.mask(notificationBody(notice, t.format));
      const d: Delivery = { v: 1, id, run: r.ref.run, flow: r.ref.flow, url: t.url, format: t.format, ...(t.secret !== undefined ? { secret: t.secret } : {}), body, createdAt: now, state: "pending", nextAt: now, attempts: [] };
      await mkdir(join(this.dir, "pending"), { recursive: true });
      await writeFileAtomic(this.file("pending", id), JSON.stringify(d));
      this.pending.set(id, d);
    }
    this.schedule();
  }

  /** The deliveries of a run this host made (`count`: its flow's notify entries). */
  async forRun(run: string, count: number): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (let i = 0; i < count; i++) {
      const id = `${run}.${i}`;
      const d = this.pending.get(id) ?? (await this.find(id, ["delivered", "failed"]));
      if (d !== undefined) out.push(d);
    }
    return out;
  }

  private async find(id: string, states: readonly DeliveryState[]): Promise<Delivery | undefined> {
    for (const s of states) {
      const d = parseDelivery(await readJsonFile(this.file(s, id)).catch(() => undefined));
      if (d !== undefined) return d;
    }
    return undefined;
  }

  private schedule(): void {
    if (!this.started || this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const now = clockNow();
    const limit = this.o.concurrency ?? 4;
    let next = Infinity;
    for (const d of [...this.pending.values()].sort((a, b) => a.nextAt - b.nextAt)) {
      if (this.inflight.has(d.id)) continue;
      if (d.nextAt > now) {
        next = Math.min(next, d.nextAt);
        continue;
      }
      if (this.inflight.size >= limit) break;
      this.send(d);
    }
    if (next !== Infinity) {
      this.timer = setTimeout(() => this.schedule(), Math.max(10, next - now));
      this.timer.unref();
    }
  }

  private send(d: Delivery): void {
    const ctl = new AbortController();
    this.inflight.set(d.id, ctl);
    void this.attempt(d, ctl.signal)
      .catch((e: unknown) => {
        // Its file could not be written (a full disk): not again at once, or the receiver
        // would be sent it in a loop. It stays pending; a restart reads the last file.
        const held = this.pending.get(d.id);
        if (held !== undefined) this.pending.set(d.id, { ...held, nextAt: clockNow() + this.settings().maxBackoffMs });
        this.o.log.error({ err: coerceError(e), delivery: d.id }, "recording a notification attempt failed");
      })
      .finally(() => {
        this.inflight.delete(d.id);
        this.schedule();
      });
  }

  private async attempt(d: Delivery, stop: AbortSignal): Promise<void> {
    const started = clockNow();
    let status: number | undefined;
    let error: string | undefined;
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "floe-notify/1", "x-floe-delivery": d.id, "x-floe-event": "run.ended" };
    if (d.secret !== undefined) {
      const key = this.o.secrets.value(d.secret);
      if (key === undefined) error = `secret ${d.secret} is not available on host ${this.o.host}; not sent unsigned`;
      else headers["x-floe-signature"] = signBody(d.body, key);
    }
    if (error === undefined) {
      try {
        const res = await fetch(d.url, { method: "POST", headers, body: d.body, redirect: "manual", signal: AbortSignal.any([stop, AbortSignal.timeout(this.o.timeoutMs ?? 10_000)]) });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        if (status < 200 || status > 299) error = `HTTP ${status}`;
      } catch (e) {
        if (stop.aborted) return; // the host stops: tried again at the next start
        error = this.o.secrets.mask(causeOf(e));
      }
    }
    const now = clockNow();
    const a: DeliveryAttempt = { at: started, ms: now - started, ...(status !== undefined ? { status } : {}), ...(error !== undefined ? { error } : {}) };
    const attempts = [...d.attempts, a].slice(-KEPT_ATTEMPTS);
    const s = this.settings();
    if (error === undefined) {
      await this.settle({ ...d, attempts, state: "delivered" });
      this.counts.sent++;
      this.o.log.info({ delivery: d.id, run: d.run, status }, "notification delivered");
      return;
    }
    this.counts.failedAttempts++;
    if (now - d.createdAt >= s.retryForMs) {
      await this.settle({ ...d, attempts, state: "failed" });
      this.counts.givenUp++;
      this.o.log.error({ delivery: d.id, run: d.run, error, tries: d.attempts.length + 1 }, "notification given up");
      return;
    }
    const delay = Math.min(s.maxBackoffMs, s.backoffMs * 2 ** Math.min(30, d.attempts.length));
    const next: Delivery = { ...d, attempts, nextAt: Math.min(now + delay, d.createdAt + s.retryForMs) };
    await writeFileAtomic(this.file("pending", d.id), JSON.stringify(next));
    this.pending.set(d.id, next);
    this.o.log.warn({ delivery: d.id, run: d.run, error, retryInMs: next.nextAt - now }, "notification failed; retrying");
  }

  /** Done or failed: its final file first, then the pending one goes (start() tidies a crash between). */
  private async settle(d: Delivery): Promise<void> {
    await writeFileAtomic(this.file(d.state, d.id), JSON.stringify(d));
    await unlink(this.file("pending", d.id)).catch(() => undefined);
    this.pending.delete(d.id);
  }
}

/** fetch's "fetch failed" hides the reason (ECONNREFUSED…) in its cause. */
function causeOf(e: unknown): string {
  const cause: unknown = e instanceof Error ? e.cause : undefined;
  const code = cause !== null && typeof cause === "object" && "code" in cause && typeof cause.code === "string" ? cause.code : undefined;
  return code !== undefined ? `${errorMessage(e)} (${code})` : errorMessage(e);
}

function parseDelivery(x: unknown): Delivery | undefined {
  if (x === null || typeof x !== "object") return undefined;
  const d = x as Record<string, unknown>;
  const ok = d["v"] === 1 && typeof d["id"] === "string" && typeof d["run"] === "string" && typeof d["flow"] === "string" && typeof d["url"] === "string" && (d["format"] === "json" || d["format"] === "slack") && typeof d["body"] === "string" && typeof d["createdAt"] === "number" && typeof d["nextAt"] === "number" && STATES.includes(d["state"] as DeliveryState) && Array.isArray(d["attempts"]) && (d["secret"] === undefined || typeof d["secret"] === "string");
  return ok ? (x as Delivery) : undefined; // every field read above checked
}

/** A delivery as the run's detail shows it: no body, the URL's origin only. */
export function publicDelivery(d: Delivery): Record<string, unknown> {
  let url = d.url;
  try {
    url = new URL(d.url).origin;
  } catch {
    // kept as it is
  }
  return { id: d.id, url, format: d.format, state: d.state, signed: d.secret !== undefined, createdAt: d.createdAt, ...(d.state === "pending" ? { nextAt: d.nextAt } : {}), attempts: d.attempts };
}
