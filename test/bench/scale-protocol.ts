/**
 * What the scale harness (scale.ts) and its worker processes (scale-worker.ts) tell each
 * other over the fork's IPC channel. The simulated hosts are spread over several processes
 * so that 500 of them (1,000 heartbeats and reaps a second before any run) do not saturate
 * one Node event loop and make their own heartbeats late. Times that cross processes are on
 * the machine's monotonic clock (`mono()`, CLOCK_MONOTONIC, the same in every process), so
 * the invariants compare a claim in one process with a release in another.
 */

/** Milliseconds on the machine-wide monotonic clock (process.hrtime is CLOCK_MONOTONIC). */
export function mono(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface WorkerConfig {
  readonly redisUrl: string;
  readonly natsUrl: string;
  readonly cluster: string;
  readonly subject: string;
  readonly mode: "wake" | "herd";
  /** Hosts tick on the wall clock's instants at their phase (hub/tick-phase.ts), as real hosts; false: each at a phase of its own, the way before. */
  readonly align: boolean;
  readonly slots: number;
  readonly taskMs: number;
  /** The hosts of this worker: indexes into the harness's numbering (name h0000…, even ones tagged linux). */
  readonly hosts: readonly number[];
  /** Command connections this worker's hosts share, round-robin (one per host: as real hosts); each host also has its own wake-up connection. */
  readonly connections: number;
}

export type DispatchSum = Record<"passes" | "snapshots" | "wakesSent" | "woken" | "claimed" | "conflicts", number>;

export type ToWorker =
  | { readonly t: "config"; readonly config: WorkerConfig }
  /** Start heartbeats, reaps and dispatch: of one host, or of every host not started yet. */
  | { readonly t: "start"; readonly host?: string }
  /** A pend this host adopted was added (adoption kicks the adopting host's dispatcher). */
  | { readonly t: "kick"; readonly hosts: readonly string[] }
  /** A run this host took as it was adopted (addPendTaking): it runs it (its claim is noted by the harness). */
  | { readonly t: "took"; readonly host: string; readonly run: string; readonly token: number }
  | { readonly t: "measuring"; readonly on: boolean }
  | { readonly t: "sample"; readonly id: number }
  | { readonly t: "stop" };

export interface ClaimNote {
  readonly run: string;
  readonly host: string;
  readonly token: number;
  readonly at: number;
}

export interface EndNote {
  readonly run: string;
  readonly releaseAt: number;
  readonly endedAt: number;
}

export type FromWorker =
  | { readonly t: "ready" }
  /** Batched every 50 ms: claims made and runs released since the last batch. */
  | { readonly t: "events"; readonly claims: readonly ClaimNote[]; readonly ends: readonly EndNote[]; readonly reaped: readonly string[]; readonly errors: readonly string[] }
  /** The dispatchers' counters and this process's CPU (µs), for `sample`. */
  | { readonly t: "sample"; readonly id: number; readonly sum: DispatchSum; readonly cpuUs: number }
  /** Heartbeat round trips measured while `measuring`, sent when stopped. */
  | { readonly t: "stopped"; readonly heartbeatMs: readonly number[] };

export function hostName(i: number): string {
  return `h${String(i).padStart(4, "0")}`;
}

export function hostTags(i: number): string[] {
  return i % 2 === 0 ? ["linux"] : [];
}
