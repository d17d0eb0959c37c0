/**
 * The failover epoch of a primary found through Redis Sentinel: the `config-epoch` that
 * `SENTINEL MASTER <name>` reports, which the sentinels raise with every failover they
 * agree on. A host asks it once per connection (store/redis-state.ts) and passes it to the
 * scripts that hand out fencing tokens, so a newly promoted primary's tokens are above all
 * of the old one's, even those whose writes never reached it (README "Scaling out").
 *
 * Only sentinels that name the primary this host is connected to are believed: one that has
 * not heard of the failover yet still names the old primary, and its epoch is the old one.
 */
import { Redis } from "ioredis";
import type { SentinelOptions } from "./redis-url.js";

export interface SentinelEpochOptions {
  /** How long each sentinel may take to connect and answer. @defaultValue 1000 */
  readonly timeoutMs?: number;
}

/**
 * The largest config-epoch among the sentinels that say the primary is at `at`; throws
 * when none does (the sentinels have not caught up with the failover, or none answered).
 */
export async function sentinelEpoch(s: SentinelOptions, at: { readonly host: string; readonly port: number }, o: SentinelEpochOptions = {}): Promise<number> {
  const timeoutMs = o.timeoutMs ?? 1000;
  const answers = await Promise.all(s.sentinels.map((addr) => askOne(addr, s.name, timeoutMs).catch(() => undefined)));
  let best: number | undefined;
  for (const a of answers) {
    if (a === undefined || a.port !== at.port || !sameHost(a.ip, at.host)) continue;
    if (best === undefined || a.epoch > best) best = a.epoch;
  }
  if (best === undefined) {
    const seen = answers.filter((a) => a !== undefined).map((a) => `${a.ip}:${a.port}`);
    throw new Error(`no sentinel names ${at.host}:${at.port} as the primary of ${s.name} (they name ${seen.join(", ") || "nothing: none answered"})`);
  }
  return best;
}

async function askOne(addr: { host: string; port: number }, name: string, timeoutMs: number): Promise<{ ip: string; port: number; epoch: number }> {
  const c = new Redis({ host: addr.host, port: addr.port, lazyConnect: true, connectTimeout: timeoutMs, commandTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: true, retryStrategy: () => null });
  c.on("error", () => undefined);
  try {
    await c.connect();
    const fields = flat(await c.call("SENTINEL", "MASTER", name));
    const ip = fields.get("ip");
    const port = Number(fields.get("port"));
    const epoch = Number(fields.get("config-epoch"));
    if (ip === undefined || !Number.isInteger(port) || !Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`sentinel ${addr.host}:${addr.port} gave no primary for ${name}`);
    return { ip, port, epoch };
  } finally {
    c.disconnect();
  }
}

/** A flat [k, v, k, v…] reply (RESP2) or a map (RESP3) as a Map of strings. */
function flat(r: unknown): Map<string, string> {
  const m = new Map<string, string>();
  if (Array.isArray(r)) {
    for (let i = 0; i + 1 < r.length; i += 2) m.set(String(r[i]), String(r[i + 1]));
  } else if (r instanceof Map) {
    for (const [k, v] of r) m.set(String(k), String(v));
  } else if (r !== null && typeof r === "object") {
    for (const [k, v] of Object.entries(r)) m.set(k, String(v));
  }
  return m;
}

function sameHost(a: string, b: string): boolean {
  const norm = (h: string) => (h === "localhost" ? "127.0.0.1" : h.replace(/^::ffff:/, ""));
  return norm(a) === norm(b);
}
