/**
 * This host's lease in the cluster, and when it may act on it.
 *
 * The timing argument (README "A cluster"). A renewal sent at host time `s` runs in Redis
 * at some later instant and sets the lease to end `lease` after it, on Redis's clock; the
 * other hosts reap this host's runs only `margin` after that end. So, measured on this
 * host's monotonic clock from the moment it *sent* its last renewal that came back, the
 * lease cannot have been taken before `s + lease + margin`. This host stops acting on it
 * at `s + lease − margin`: it starts no task after that and kills the process groups of the
 * tasks it runs (stand-down). The `2 × margin` between the two covers a timer that fires
 * late on a busy event loop, the kill itself, and clock-rate drift (ppm: microseconds here).
 *
 * A host that stood down does not renew its lease blindly: a slow link would keep the
 * lease alive while it can vouch for nothing, and its runs would never move. It probes the
 * state instead and renews only once a probe comes back within half the vouching window;
 * meanwhile its lease lapses and the cluster takes its runs. The cost: a host whose Redis
 * stays slower than about `lease − margin` for a round trip loses its runs.
 */
import type { Logger } from "pino";
import { retry } from "../store/backoff.js";
import { coerceError, errorCode } from "./errors.js";
import { nextTickAt } from "./tick-phase.js";

export type Renewal = "new" | "renewed" | "expired";

/** A host's lease when none is given (`--lease`). */
export const DEFAULT_LEASE_MS = 2000;

/** How long a start waits for a cluster state that fails transiently (see begin). */
const FIRST_RENEWAL_PATIENCE_MS = 10_000;

/** The margin for a lease of `leaseMs`: a quarter of it, within 100 ms … 10 s. */
export function leaseMargin(leaseMs: number): number {
  return Math.min(10_000, Math.max(100, Math.round(leaseMs / 4)));
}

export interface LeaseDeps {
  /** One renewal of this host's lease (ClusterState.heartbeat with the host's record). */
  renew(leaseMs: number, marginMs: number): Promise<Renewal>;
  /** One round trip to the state that changes nothing. */
  probe(): Promise<void>;
  /** The lease no longer vouches for this host: stop every task of its runs now. */
  standDown(): void;
  /**
   * A renewal vouches again after a stand-down (or the state said the lease had expired):
   * runs taken away meanwhile are dropped here, the others go on.
   */
  regained(outcome: Renewal): Promise<void>;
  /** Whether the host stands down when the lease no longer vouches (a cluster member). */
  readonly selfFence: boolean;
  /** Where in the period this host ticks (hub/tick-phase.ts), asked before each tick. @defaultValue 0 */
  tickPhase?(): number;
  readonly log: Logger;
}

export class Lease {
  readonly marginMs: number;
  /** performance.now() until which the last renewal that came back vouches for the lease. */
  private vouchedUntil = Number.NEGATIVE_INFINITY;
  private stoodDown = false;
  private state: "new" | "running" | "stopped" = "new";
  private watchdog: NodeJS.Timeout | undefined;
  private loop: NodeJS.Timeout | undefined;
  /** The wall-clock instant the last tick was set for (nextTickAt keeps the cadence from it). */
  private lastTickAt: number | undefined;
  /** The renewal or probe in flight, if any (one at a time: they share one connection). */
  private inFlight: Promise<void> | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly tickListeners = new Set<() => void>();
  /** performance.now() of the last failed renewal or probe (the host's start counts). */
  troubleAt = performance.now();
  private failing = false;

  constructor(
    readonly ms: number,
    private readonly deps: LeaseDeps,
  ) {
    this.marginMs = leaseMargin(ms);
  }

  /** How often the lease is renewed: three chances within the vouching window (on the instants schedule() says). */
  get renewEveryMs(): number {
    return Math.max(50, Math.floor((this.ms - this.marginMs) / 3));
  }

  /** Whether this host may act on its lease now (start a task, claim a run). */
  get vouched(): boolean {
    return !this.stoodDown && performance.now() < this.vouchedUntil;
  }

  /**
   * The first renewal, then renewals every renewEveryMs. A cluster state that answered a
   * moment ago (the connection was made) but fails now (Redis busy past the command
   * timeout, or reconnecting) is given a few seconds: a loaded machine must not stop a
   * host from starting. Any other error, or one that lasts, is thrown.
   */
  async begin(): Promise<Renewal> {
    if (this.state !== "new") throw new Error(`the lease was already ${this.state === "running" ? "begun" : "stopped"}`);
    const deadline = performance.now() + FIRST_RENEWAL_PATIENCE_MS;
    const out = await retry(() => this.renewOnce(), {
      firstMs: 100,
      maxMs: 1000,
      retryIf: (e, { delayMs }) => errorCode(e) === "E_UNAVAILABLE" && performance.now() + delayMs <= deadline,
      onRetry: (e) => this.deps.log.warn({ err: coerceError(e) }, "the first heartbeat failed; retrying"),
    });
    this.state = "running";
    this.schedule();
    return out;
  }

  /**
   * Resolves true once the lease vouches for this host (at once if it does now), false if
   * `signal` aborts first or the lease is stopped.
   */
  whenVouched(signal: AbortSignal): Promise<boolean> {
    if (this.vouched) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean): void => {
        this.waiters.delete(wake);
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      };
      const wake = (): void => {
        if (this.state === "stopped") done(false);
        else if (this.vouched) done(true);
      };
      const onAbort = (): void => done(false);
      if (signal.aborted) return done(false);
      this.waiters.add(wake);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** No renewal starts after this; one in flight is waited for. */
  async stop(): Promise<void> {
    this.state = "stopped";
    if (this.loop !== undefined) clearTimeout(this.loop);
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    for (const w of [...this.waiters]) w();
    await this.inFlight?.catch(() => undefined);
  }

  /**
   * A renewal now, after any in flight (the host's record changed, e.g. its slots): the
   * cluster learns it without waiting for the next tick. Failures are the ticks' to report.
   */
  async renewNow(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight.catch(() => undefined);
    if (this.state !== "running") return;
    this.inFlight = this.tick().finally(() => (this.inFlight = undefined));
    await this.inFlight;
  }

  /**
   * `fn` runs at each tick of the renewal timer, in the same turn as the renewal is sent:
   * periodic work that asks the cluster state something (cluster sync, on-update's look) goes
   * out with the renewal, so Redis serves both in one wake-up — on a quiet cluster, a wake-up
   * costs Redis far more than the commands it serves. Returns how to stop it.
   */
  onTick(fn: () => void): () => void {
    this.tickListeners.add(fn);
    return () => this.tickListeners.delete(fn);
  }

  /**
   * The next tick, on the instant the host's phase gives (hub/tick-phase.ts: a cluster's hosts
   * renew together, and Redis serves them in one wake-up): a period after the last one.
   */
  private schedule(): void {
    if (this.state !== "running") return;
    const at = nextTickAt(Date.now(), this.lastTickAt, this.renewEveryMs, this.deps.tickPhase?.() ?? 0);
    this.loop = setTimeout(
      () => {
        this.lastTickAt = at;
        // Ticks keep their pace whatever a renewal costs; one still in flight is not doubled.
        this.schedule();
        if (this.inFlight === undefined) this.inFlight = this.tick().finally(() => (this.inFlight = undefined));
        for (const fn of this.tickListeners) fn();
      },
      Math.max(0, at - Date.now()),
    );
    this.loop.unref();
  }

  private async tick(): Promise<void> {
    try {
      if (this.stoodDown) {
        const sent = performance.now();
        await this.deps.probe();
        if (performance.now() - sent > (this.ms - this.marginMs) / 2 || this.state !== "running") return;
      }
      const out = await this.renewOnce();
      if (this.state !== "running") return;
      this.failing = false;
      if (out === "expired" && !this.stoodDown) this.down("the cluster says this host's lease had lapsed");
      if (this.stoodDown && performance.now() < this.vouchedUntil) {
        this.deps.log.warn({ outcome: out }, "the lease vouches again; resuming what is still this host's");
        await this.deps.regained(out);
        this.stoodDown = false;
        // Regaining took so long that the renewal no longer vouches: down again at once.
        if (performance.now() >= this.vouchedUntil) this.down("the lease lapsed again while this host resumed its runs");
        else this.wakeWaiters();
      }
    } catch (e) {
      this.troubleAt = performance.now();
      if (!this.failing) this.deps.log.warn({ err: coerceError(e) }, "heartbeat failed; retrying");
      this.failing = true;
    }
  }

  /** One renewal; it vouches until `sent + lease − margin` if its answer came back before. */
  private async renewOnce(): Promise<Renewal> {
    const sent = performance.now();
    let out: Renewal;
    try {
      out = await this.deps.renew(this.ms, this.marginMs);
    } catch (e) {
      this.troubleAt = performance.now();
      throw e;
    }
    const until = sent + this.ms - this.marginMs;
    if (performance.now() < until && until > this.vouchedUntil) {
      this.vouchedUntil = until;
      if (this.deps.selfFence) this.armWatchdog(until - performance.now());
      if (!this.stoodDown) this.wakeWaiters();
    }
    return out;
  }

  private armWatchdog(ms: number): void {
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (this.state !== "running") return;
      // Timers run on the event loop's cached clock and can fire a little early: wait out the rest.
      const left = this.vouchedUntil - performance.now();
      if (left > 0) return this.armWatchdog(left + 1);
      this.down(`no renewal of this host's lease came back within ${this.ms - this.marginMs} ms`);
    }, Math.max(0, ms));
    this.watchdog.unref();
  }

  private down(why: string): void {
    if (this.stoodDown || !this.deps.selfFence) return;
    this.stoodDown = true;
    this.deps.log.error({ leaseMs: this.ms, marginMs: this.marginMs }, `${why}: stopping every task of this host's runs until it vouches again`);
    this.deps.standDown();
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) w();
  }
}
