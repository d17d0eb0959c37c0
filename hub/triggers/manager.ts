/**
 * Every trigger that is not a person: schedules (timer, cron), git pollers and webhooks, for
 * every (flow id, ver) of the config, each firing for its own flow version and trigger id
 * (floe fired every flow with a trigger of that type and used the first trigger found,
 * reference §9.16-17). It depends on the hub only through TriggerSink.
 */
import type { HostCommands } from "../../agent/contract.js";
import type { TriggerStore } from "./store.js";
import type { Logger } from "pino";
import type { Config, Flow, TriggerNode } from "../../flows/model.js";
import { coerceError, FloeError } from "../errors.js";
import type { Clock } from "./clock.js";
import { GitPoller, type GitPollerStatus, type PollWatcher } from "./poll-git.js";
import { refPatterns } from "./refs.js";
import { DEFAULT_PERIOD_S, Schedule, type ScheduleStatus } from "./schedule.js";
import type { TriggerSink } from "./sink.js";
import { deliveryId, verifyAndParse, type Headers } from "./webhook.js";

export interface TriggerManagerOptions {
  readonly config: Config;
  /** Trigger state lives under `<root>/triggers`. */
  readonly root: string;
  readonly sink: TriggerSink;
  readonly log: Logger;
  /** ssh key for poll-git over ssh (common.git-key). */
  readonly gitKey?: string;
  /** The host's system programs, through the agent: `git ls-remote` for poll triggers. */
  readonly commands: Pick<HostCommands, "lsRemote">;
  /** @defaultValue the system clock */
  readonly clock?: Clock;
  /** How long one `git ls-remote` may take. @defaultValue 60000 */
  readonly pollTimeoutMs?: number;
  /** Longest wait between polls of a failing remote. @defaultValue 600000 */
  readonly maxBackoffMs?: number;
  /** Trigger state and once-per-cluster claims. @defaultValue files under root, no claims */
  readonly store?: TriggerStore;
}

export interface WebhookResponse {
  readonly status: number;
  readonly body: unknown;
}

export type TriggerManagerState = "new" | "running" | "stopping" | "stopped";

/** floe's poll-git default pattern (reference §2). */
const DEFAULT_REFS = ["refs/*"];
/** Delivery ids remembered to refuse replays of a request already acted on. */
const MAX_DELIVERIES = 1000;

function errorBody(status: number, code: string, message: string): WebhookResponse {
  return { status, body: { error: { code, message } } };
}

function periodMs(t: TriggerNode): number {
  const p = t.opts["period"];
  return (typeof p === "number" && Number.isInteger(p) && p >= 1 ? p : DEFAULT_PERIOD_S) * 1000;
}

export class TriggerManager {
  state: TriggerManagerState = "new";
  private config: Config;
  private pollers: GitPoller[] = [];
  private schedules: Schedule[] = [];
  /** start, reload and stop run one after another, never interleaved. */
  private transition: Promise<void> = Promise.resolve();
  private stopPromise: Promise<void> | undefined;
  private readonly deliveries = new Set<string>();

  constructor(private readonly o: TriggerManagerOptions) {
    this.config = o.config;
  }

  start(): void {
    if (this.state !== "new") return;
    this.state = "running";
    this.enqueue(async () => this.startAll(this.config));
  }

  private enqueue(step: () => Promise<void>): void {
    this.transition = this.transition.then(step).catch((e: unknown) => this.o.log.error({ err: coerceError(e) }, "triggers could not be restarted"));
  }

  /** A new config: webhooks use it at once; schedules and pollers restart from their saved state. */
  reload(config: Config): void {
    this.config = config;
    if (this.state !== "running") return;
    this.enqueue(async () => {
      // The old ones finish what they are doing first, so a fire in progress is recorded
      // before the new schedule reads its state (no double fire across a reload).
      await this.stopAll();
      if (this.state === "running") this.startAll(this.config);
    });
  }

  /** Resolves once schedules have read their state and fired any catch-up run (tests). */
  async ready(): Promise<void> {
    await this.transition;
    await Promise.all(this.schedules.map((s) => s.idle()));
  }

  private startAll(config: Config): void {
    const groups = new Map<string, { url: string; refs: string[]; periodMs: number; watchers: PollWatcher[] }>();
    for (const flow of config.flows) {
      for (const t of flow.triggers) {
        const log = this.o.log.child({ flow: flow.id, ver: flow.ver, trigger: t.id });
        try {
          if (t.type === "timer" || t.type === "cron") {
            const s = new Schedule({ flow: flow.id, ver: flow.ver, trigger: t, root: this.o.root, sink: this.o.sink, log: this.o.log, ...(this.o.clock !== undefined ? { clock: this.o.clock } : {}), ...(this.o.store !== undefined ? { store: this.o.store } : {}) });
            this.schedules.push(s);
            void s.start();
          } else if (t.type === "poll-git") {
            const url = t.opts["url"];
            if (typeof url !== "string" || url === "") {
              log.error("poll-git trigger has no opts.url; it will not poll");
              continue;
            }
            const refs = refPatterns(t.opts["refs"]);
            const patterns = refs.length > 0 ? refs : DEFAULT_REFS;
            const key = JSON.stringify([url, patterns]);
            const g = groups.get(key) ?? { url, refs: patterns, periodMs: periodMs(t), watchers: [] };
            // Triggers sharing a poller get the shortest of their periods.
            g.periodMs = Math.min(g.periodMs, periodMs(t));
            g.watchers.push({ flow: flow.id, ver: flow.ver, trigger: t.id, exclude: this.excludes(t, log) });
            groups.set(key, g);
          }
        } catch (e) {
          log.error({ err: coerceError(e) }, "trigger could not be set up; it will not fire");
        }
      }
    }
    for (const g of groups.values()) {
      const p = new GitPoller({
        url: g.url,
        refs: g.refs,
        periodMs: g.periodMs,
        root: this.o.root,
        sink: this.o.sink,
        log: this.o.log,
        lsRemote: (o) => this.o.commands.lsRemote(o),
        ...(this.o.gitKey !== undefined ? { gitKey: this.o.gitKey } : {}),
        ...(this.o.clock !== undefined ? { clock: this.o.clock } : {}),
        ...(this.o.pollTimeoutMs !== undefined ? { timeoutMs: this.o.pollTimeoutMs } : {}),
        ...(this.o.maxBackoffMs !== undefined ? { maxBackoffMs: this.o.maxBackoffMs } : {}),
        ...(this.o.store !== undefined ? { store: this.o.store } : {}),
      });
      for (const w of g.watchers) p.add(w);
      this.pollers.push(p);
      p.start();
    }
    this.o.log.info({ schedules: this.schedules.length, pollers: this.pollers.length }, "triggers started");
  }

  /** `exclude` (floe's code) and `exclude-refs` (floe's examples, ignored by floe): both count. */
  private excludes(t: TriggerNode, log: Logger): RegExp[] {
    const out: RegExp[] = [];
    for (const k of ["exclude", "exclude-refs"]) {
      const v = t.opts[k];
      for (const src of typeof v === "string" ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []) {
        try {
          out.push(new RegExp(src));
        } catch {
          log.error({ option: k }, "poll-git exclude pattern is not a valid regular expression; ignored");
        }
      }
    }
    return out;
  }

  private async stopAll(): Promise<void> {
    const parts = [...this.pollers, ...this.schedules];
    this.pollers = [];
    this.schedules = [];
    const results = await Promise.allSettled(parts.map((p) => p.stop()));
    const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    if (errors.length > 0) throw new AggregateError(errors, "triggers stopped with errors");
  }

  /** Idempotent: no new fires or polls; in-flight ls-remote calls are killed. */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.state = "stopping";
      await this.transition;
      try {
        await this.stopAll();
      } finally {
        this.state = "stopped";
      }
    })();
    return this.stopPromise;
  }

  status(): { pollers: GitPollerStatus[]; schedules: ScheduleStatus[] } {
    return { pollers: this.pollers.map((p) => p.status()), schedules: this.schedules.map((s) => s.status()) };
  }

  private latest(id: string): Flow | undefined {
    return this.config.flows.filter((f) => f.id === id).reduce<Flow | undefined>((best, f) => (best === undefined || f.ver > best.ver ? f : best), undefined);
  }

  /**
   * `POST /hooks/:flow/:trigger`. Never throws; never logs the secret or the signature.
   * 201 a run started, 200 a ping, 202 ignored (other event, ref filtered, deleted, replay),
   * 401 bad or missing signature, 400 a malformed payload, 404 no such webhook trigger.
   */
  async handleWebhook(flowId: string, triggerId: string, headers: Headers, rawBody: Buffer): Promise<WebhookResponse> {
    try {
      return await this.webhook(flowId, triggerId, headers, rawBody);
    } catch (e) {
      this.o.log.error({ err: coerceError(e), flow: flowId, trigger: triggerId }, "webhook failed");
      return errorBody(500, "E_INTERNAL", "the webhook could not be handled");
    }
  }

  private async webhook(flowId: string, triggerId: string, headers: Headers, rawBody: Buffer): Promise<WebhookResponse> {
    const flow = this.latest(flowId);
    if (flow === undefined) return errorBody(404, "E_FLOW_NOT_FOUND", `no flow "${flowId}"`);
    const trig = flow.triggers.find((t) => t.id === triggerId);
    if (trig === undefined) return errorBody(404, "E_TRIGGER_NOT_FOUND", `flow "${flow.id}" has no trigger "${triggerId}"`);
    if (trig.type !== "git-push" && trig.type !== "webhook") {
      return errorBody(404, "E_TRIGGER_NOT_FOUND", `trigger "${trig.id}" of flow "${flow.id}" is a ${trig.type} trigger, not a webhook trigger`);
    }
    const log = this.o.log.child({ flow: flow.id, ver: flow.ver, trigger: trig.id });
    const r = verifyAndParse({ headers, rawBody, trigger: trig });
    switch (r.kind) {
      case "rejected":
        log.warn({ code: r.code, reason: r.message }, "webhook rejected");
        return errorBody(r.status, r.code, r.message);
      case "ping":
        return { status: 200, body: { ok: true, event: "ping" } };
      case "ignored":
        log.info({ reason: r.reason }, "webhook ignored");
        return { status: 202, body: { ignored: r.reason } };
      case "push":
      case "data":
        break;
    }
    // A verified request seen before is a replay (providers keep the id on redelivery too).
    const delivery = deliveryId(headers);
    const key = delivery === undefined ? undefined : `${flow.id}/${trig.id}/${delivery}`;
    if (key !== undefined && this.deliveries.has(key)) return { status: 202, body: { ignored: `delivery ${delivery ?? ""} was already handled` } };
    if (key !== undefined) this.remember(key);
    try {
      const run = await this.o.sink.trigger({ flow: flow.id, ver: flow.ver, trigger: trig.id, by: "webhook", ...(r.kind === "push" ? { opts: r.opts } : { values: r.values }) });
      log.info(r.kind === "push" ? { ref: r.opts.ref, hash: r.opts.hash, provider: r.opts.provider } : {}, "webhook started a run");
      return { status: 201, body: { run } };
    } catch (e) {
      // Refused (queue full, stopping…): the sender may redeliver, so the id is forgotten.
      if (key !== undefined) this.deliveries.delete(key);
      if (e instanceof FloeError) return errorBody(e.status, e.code, e.message);
      log.error({ err: coerceError(e) }, "webhook could not start a run");
      return errorBody(500, "E_INTERNAL", "the run could not be started");
    }
  }

  private remember(key: string): void {
    this.deliveries.add(key);
    // Sets iterate in insertion order: the oldest id goes first.
    if (this.deliveries.size > MAX_DELIVERIES) for (const k of this.deliveries) {
      this.deliveries.delete(k);
      break;
    }
  }
}
