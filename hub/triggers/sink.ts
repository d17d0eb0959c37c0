/**
 * Where triggers deliver: the one thing pollers, schedules and webhooks know about the hub.
 * The Hub satisfies it structurally, so trigger sources can be tested against a recorder and
 * never reach into hub internals.
 */

export interface TriggerSinkRequest {
  readonly flow: string;
  readonly ver?: number;
  /** The trigger id: runs are always started by a named trigger (floe used the first match, §9.17). */
  readonly trigger?: string;
  /** What the source knows about this firing (url, branch, hash…); merged into the run's values. */
  readonly opts?: Readonly<Record<string, unknown>>;
  readonly values?: unknown;
  /** Who asked ("webhook", "timer", "cron", "poll-git"), recorded on the run. */
  readonly by?: string;
}

export interface TriggerSink {
  /** Adopts one run; resolves once it is durable, rejects when refused (queue full, stopping…). */
  trigger(req: TriggerSinkRequest): Promise<unknown>;
}
