/**
 * poll-git: one poller per distinct (url, refs), shared by every trigger that watches the
 * same thing, so N flows on one repository cost one `git ls-remote` per period. Each
 * watching trigger keeps its own baseline on disk; a new or moved ref starts one run of
 * that trigger's flow. Failures back off and are logged, never thrown (floe crashed the
 * host, reference §9.2), and floe's `exclude-refs` is honoured beside `exclude` (§9.20).
 */
import { dirname } from "node:path";
import type { Logger } from "pino";
import { FileTriggerStore, type TriggerStore } from "./store.js";
import { coerceError, errorMessage } from "../errors.js";
import { systemClock, type Clock, type TimerHandle } from "./clock.js";
import type { LsRemoteOptions, LsRemoteResult } from "../../agent/contract.js";
import { backoffDelay } from "../../store/backoff.js";
import { redactUrl } from "../../store/redact-url.js";
import { refValues, triggerStatePath } from "./refs.js";
import type { TriggerSink } from "./sink.js";

export interface PollWatcher {
  readonly flow: string;
  readonly ver: number;
  readonly trigger: string;
  /** Unanchored regexes over the full ref name (`exclude`, `exclude-refs`): matching refs start no run. */
  readonly exclude: readonly RegExp[];
}

export interface GitPollerOptions {
  readonly url: string;
  /** ls-remote patterns, e.g. `refs/heads/*`. */
  readonly refs: readonly string[];
  readonly periodMs: number;
  readonly root: string;
  readonly sink: TriggerSink;
  readonly log: Logger;
  readonly gitKey?: string;
  /** @defaultValue 60000 */
  readonly timeoutMs?: number;
  /** Backoff never waits longer than this (nor less than the period). @defaultValue 600000 */
  readonly maxBackoffMs?: number;
  /** @defaultValue {@link systemClock} */
  readonly clock?: Clock;
  /** Where baselines are kept, and how a poll is claimed once per cluster. @defaultValue files */
  readonly store?: TriggerStore;
  /** `git ls-remote`, through the agent (HostCommands.lsRemote; tests of the loop give their own). */
  readonly lsRemote: (o: LsRemoteOptions) => Promise<LsRemoteResult>;
}

export interface GitPollerStatus {
  readonly url: string;
  readonly refs: readonly string[];
  readonly watchers: readonly string[];
  readonly failures: number;
  readonly lastError?: string;
  readonly nextDelayMs: number;
}

interface Baseline {
  readonly url: string;
  readonly refs: readonly string[];
  readonly heads: ReadonlyMap<string, string>;
}

interface Watching extends PollWatcher {
  readonly path: string;
  /** undefined: not read yet; null: none on disk (the next poll only records one). */
  baseline: Baseline | null | undefined;
}

export class GitPoller {
  state: "new" | "running" | "stopped" = "new";
  private readonly watchers: Watching[] = [];
  private readonly clock: Clock;
  private readonly store: TriggerStore;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private timer: TimerHandle | undefined;
  private inFlight: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private nextDelayMs: number;

  constructor(private readonly o: GitPollerOptions) {
    this.clock = o.clock ?? systemClock;
    this.store = o.store ?? new FileTriggerStore();
    this.log = o.log.child({ poll: redactUrl(o.url), refs: o.refs });
    this.nextDelayMs = o.periodMs;
  }

  add(w: PollWatcher): void {
    this.watchers.push({ ...w, path: triggerStatePath(this.o.root, w.flow, w.trigger, "refs"), baseline: undefined });
  }

  /** Polls at once (changes made while the host was down start their runs), then every period. */
  start(): void {
    if (this.state !== "new") return;
    this.state = "running";
    this.arm(0);
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      if (this.state !== "running") return;
      this.inFlight = this.pollOnce().finally(() => {
        this.inFlight = undefined;
        if (this.state === "running") this.arm(this.nextDelayMs);
      });
    }, ms);
  }

  /** One poll: ls-remote, then runs for what changed. Never throws. */
  async pollOnce(): Promise<void> {
    if (this.store.shared) {
      // One host of the cluster polls each period; the baselines it saves are read by all.
      const slot = Math.floor(this.clock.now() / this.o.periodMs);
      if (!(await this.store.claim(`poll:${this.o.url}:${this.o.refs.join(",")}:${slot}`, this.o.periodMs).catch(() => false))) return;
      for (const w of this.watchers) w.baseline = undefined;
    }
    let res: LsRemoteResult;
    try {
      res = await this.o.lsRemote({ url: this.o.url, patterns: this.o.refs, timeoutMs: this.o.timeoutMs ?? 60_000, signal: this.abort.signal, ...(this.o.gitKey !== undefined ? { gitKey: this.o.gitKey } : {}) });
    } catch (e) {
      res = { ok: false, error: errorMessage(e), stopped: false };
    }
    if (!res.ok) {
      if (!res.stopped) this.failed(res.error);
      return;
    }
    if (this.failures > 0) this.log.info({ after: this.failures }, "poll-git: the remote answers again");
    this.failures = 0;
    this.lastError = undefined;
    this.nextDelayMs = this.o.periodMs;
    for (const w of this.watchers) {
      try {
        await this.deliver(w, res.refs);
      } catch (e) {
        // A baseline that can not be written: the next poll tries again (runs may repeat, none are lost).
        this.log.warn({ err: coerceError(e), flow: w.flow, trigger: w.trigger }, "poll-git: could not save the baseline");
      }
    }
  }

  /** Backoff: period × 2^failures, capped at maxBackoffMs (but never below the period). */
  private failed(error: string): void {
    const reason = redactUrl(error);
    this.failures++;
    this.lastError = reason;
    const cap = Math.max(this.o.periodMs, this.o.maxBackoffMs ?? 600_000);
    this.nextDelayMs = backoffDelay(this.failures, { firstMs: this.o.periodMs, maxMs: cap });
    this.log.warn({ reason, failures: this.failures, retryInMs: this.nextDelayMs }, "poll-git: git ls-remote failed; backing off");
  }

  private async deliver(w: Watching, heads: ReadonlyMap<string, string>): Promise<void> {
    if (w.baseline === undefined) w.baseline = await this.load(w);
    const now: Baseline = { url: this.o.url, refs: this.o.refs, heads };
    const before = w.baseline;
    if (before === null) {
      // First sight of this repository: record what is there; only later changes start runs.
      await this.save(w, now);
      w.baseline = now;
      this.log.info({ flow: w.flow, trigger: w.trigger, refs: heads.size }, "poll-git: baseline recorded");
      return;
    }
    for (const [ref, hash] of heads) {
      if (before.heads.get(ref) === hash) continue;
      if (w.exclude.some((re) => re.test(ref))) continue;
      await this.fire(w, ref, hash);
    }
    // Saved after the runs are adopted: a crash in between repeats a run rather than losing one.
    await this.save(w, now);
    w.baseline = now;
  }

  private async fire(w: Watching, ref: string, hash: string): Promise<void> {
    const opts = { url: this.o.url, ...refValues(ref), hash, ref };
    try {
      await this.o.sink.trigger({ flow: w.flow, ver: w.ver, trigger: w.trigger, opts, by: "poll-git" });
      this.log.info({ flow: w.flow, ver: w.ver, trigger: w.trigger, ref, hash }, "poll-git: run started");
    } catch (e) {
      this.log.warn({ err: coerceError(e), flow: w.flow, trigger: w.trigger, ref, hash }, "poll-git: the run was refused");
    }
  }

  /**
   * The baseline on disk, or null to take a new one: none yet, unreadable, or taken for
   * another URL or other patterns (else every ref newly in view would start a run).
   */
  private async load(w: Watching): Promise<Baseline | null> {
    let raw: unknown;
    try {
      raw = await this.store.read(w.path);
    } catch (e) {
      this.log.warn({ err: coerceError(e), flow: w.flow, trigger: w.trigger }, "poll-git: unreadable baseline; taking a new one");
      return null;
    }
    if (raw === undefined || raw === null || typeof raw !== "object") return null;
    const r = raw as { v?: unknown; url?: unknown; refs?: unknown; heads?: unknown };
    if (r.v !== 1 || r.url !== this.o.url || JSON.stringify(r.refs) !== JSON.stringify(this.o.refs)) return null;
    if (r.heads === null || typeof r.heads !== "object") return null;
    const heads = new Map<string, string>();
    for (const [ref, hash] of Object.entries(r.heads)) if (typeof hash === "string") heads.set(ref, hash);
    return { url: this.o.url, refs: this.o.refs, heads };
  }

  private async save(w: Watching, b: Baseline): Promise<void> {
    const body = { v: 1, url: b.url, refs: b.refs, at: new Date(this.clock.now()).toISOString(), heads: Object.fromEntries(b.heads) };
    await this.store.write(w.path, body);
  }

  status(): GitPollerStatus {
    return {
      url: redactUrl(this.o.url),
      refs: this.o.refs,
      watchers: this.watchers.map((w) => `${w.flow}/${w.ver}/${w.trigger}`),
      failures: this.failures,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      nextDelayMs: this.nextDelayMs,
    };
  }

  /** Idempotent: cancels the next poll, kills an ls-remote in flight, waits for it. */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.state = "stopped";
      this.timer?.cancel();
      this.timer = undefined;
      this.abort.abort(new Error("poller stopped"));
      await this.inFlight;
    })();
    return this.stopPromise;
  }
}
