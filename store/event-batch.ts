/**
 * Log lines travel in batches: the lines one node printed within a few milliseconds go as
 * one NATS message (and one stream entry), a JSON array of events on that node's log
 * subject. A batch of one is sent as the bare event, as every event was before batching,
 * so a message is either one event or an array of them; readers (the bus, history reads)
 * take both.
 */

/** The message body for events already encoded as JSON texts (at least one). */
export function encodeBatch(parts: readonly string[]): string {
  return parts.length === 1 ? (parts[0] as string) : `[${parts.join(",")}]`;
}

/** The events in a parsed message body. */
export function unbatch(x: unknown): readonly unknown[] {
  return Array.isArray(x) ? x : [x];
}

/**
 * How big a batch may grow: well under the server's max_payload (1 MiB by default), so a
 * batch and its headers always fit, and a history read of one entry stays small.
 */
export function batchLimitBytes(maxPayload: number | undefined): number {
  return Math.max(1024, Math.min(64 * 1024, Math.floor((maxPayload ?? 1024 * 1024) / 4)));
}

/** Lines in one batch at most, whatever their size. */
export const BATCH_MAX_EVENTS = 256;

/** How long the first line of a batch waits for others: lines of one output burst go together. */
export const BATCH_WAIT_MS = 4;
