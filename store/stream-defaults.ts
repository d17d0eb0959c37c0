/** The event stream's limits when none are set (apart, so the command line reads them without loading NATS). */
export const DEFAULT_HISTORY = Object.freeze({ maxAgeMs: 7 * 24 * 3600_000, maxBytes: 1024 ** 3, replicas: 1 });
