/**
 * What a clustered hub needs from the messaging layer besides the event bus: log lines
 * of runs on other hosts (kept in the JetStream history), and requests to the host that
 * executes a run (data-form input, cancel). Embedded hosts have no link.
 */
import type { LogLine, NodeStatus, RunEvent } from "./types.js";

export type HostVerb = "data" | "cancel" | "notifications" | "pause";

export interface ClusterLink {
  /** Output lines of a node of any run in the cluster, of one run attempt, after line `after`. */
  logs(run: string, node: string, attempt: number, after: number, limit: number): Promise<LogLine[]>;
  /** Every event of a run still held (to rebuild its node states). */
  runEvents(run: string): Promise<RunEvent[]>;
  /** Asks `host` to do `verb`; a FloeError-shaped reply becomes a thrown FloeError. */
  ask(host: string, verb: HostVerb, payload: unknown): Promise<unknown>;
  /** Answers this host's requests. */
  serve(verb: HostVerb, handler: (payload: unknown) => Promise<unknown>): void;
}

export type { NodeStatus };
