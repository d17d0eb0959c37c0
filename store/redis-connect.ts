/**
 * Opens a host's Redis connection for a cluster and returns the cluster state on it.
 *
 * At start a host refuses to run (a thrown Error saying what is wrong and how to fix it)
 * when Redis can not be reached within a few seconds, is older than floe needs, or may
 * evict keys (floe keeps runs and locks there: an evicted lock is a run started twice).
 *
 * After the start the connection is kept forever: the client reconnects without end, and
 * commands never queue while it is down. A call made while Redis is away fails within
 * `commandTimeoutMs` (at once when there is no connection) with a RedisUnavailableError,
 * which the hub retries; commands in flight when the connection drops are failed, not sent
 * again on their own (a claim that may have been applied is resent by the state itself,
 * with the same id, so its answer is not lost). Connection errors are logged, never thrown
 * from an event, so they can not crash the process.
 */
import { redisTarget } from "./redis-url.js";
import { sentinelEpoch } from "./sentinel-epoch.js";
import { slotOwnerConnector, slotOwnerEpoch, type SlotOwnerOptions } from "./redis-slot-owner.js";
import { redisKeys } from "./redis-keys.js";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { errorCode, errorMessage } from "../flows/errors.js";
import { backoffDelay } from "./backoff.js";
import { RedisClusterState, type RedisStateOptions } from "./redis-state.js";
import { redactUrl } from "./redact-url.js";

export interface RedisConnectOptions {
  /** @defaultValue DEFAULT_CLUSTER ("floe", store/cluster-name.ts) */
  readonly cluster?: string;
  readonly log?: Logger;
  /** This host's name, shown by CLIENT LIST. */
  readonly host?: string;
  /** How long the first connection may take before the host refuses to start. @defaultValue 3000 */
  readonly connectTimeoutMs?: number;
  /** How long any later command may take before it fails. @defaultValue 2000 */
  readonly commandTimeoutMs?: number;
  /** The most time between two reconnection attempts. @defaultValue 2000 */
  readonly maxReconnectDelayMs?: number;
  readonly state?: Omit<RedisStateOptions, "cluster" | "url" | "ownsConnection">;
}

/** The oldest Redis whose scripts replicate by effects by default (TIME before writes). */
const MIN_VERSION = [5, 0] as const;

/** The cluster state on a new connection; `state.close()` closes the connection. */
export async function openRedis(url: string, o: RedisConnectOptions = {}): Promise<RedisClusterState> {
  const shown = redactUrl(url);
  const connectTimeoutMs = o.connectTimeoutMs ?? 3000;
  const maxDelay = o.maxReconnectDelayMs ?? 2000;
  let redis: Redis;
  let slotOwner: SlotOwnerOptions | undefined;
  try {
    const target = redisTarget(url);
    const options = {
      lazyConnect: true,
      connectTimeout: connectTimeoutMs,
      commandTimeout: o.commandTimeoutMs ?? 2000,
      // Never queue while disconnected, never resend on reconnect: fail, and let callers retry.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Jitter: hosts that lost Redis together do not all come back in the same instant.
      retryStrategy: (times: number) => backoffDelay(times, { firstMs: 50, maxMs: maxDelay }) + Math.floor(Math.random() * 100),
      ...(o.host !== undefined ? { connectionName: `floe-${o.host.replace(/[^A-Za-z0-9_.-]/g, "_")}` } : {}),
    };
    if (target.kind === "cluster") {
      // Redis Cluster: the one primary that owns the floe cluster's slot, found on every connection.
      slotOwner = { ...target.options, key: redisKeys(o.cluster).prefix, timeoutMs: Math.min(connectTimeoutMs, 1000) };
      const { username, password } = target.options;
      redis = new Redis({ ...options, Connector: slotOwnerConnector(slotOwner), ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) });
    } else redis = target.kind === "url" ? new Redis(target.url, options) : new Redis({ ...options, ...target.options });
  } catch (e) {
    throw new Error(`--redis=${shown} is not a Redis URL (${errorText(e)}); expected redis://HOST:PORT, redis+sentinel://HOST:PORT,…/MASTER or redis+cluster://HOST:PORT,…`, { cause: e });
  }
  let lastError: unknown;
  let started = false;
  let down = false;
  redis.on("error", (e: unknown) => {
    lastError = e;
    if (!started || down) return;
    down = true;
    o.log?.warn({ err: e, url: shown }, "Redis connection failed; reconnecting");
  });
  redis.on("ready", () => {
    if (started && down) o.log?.info({ url: shown }, "Redis reconnected");
    down = false;
  });
  redis.on("close", () => {
    if (started && !down) {
      down = true;
      o.log?.warn({ url: shown }, "Redis connection closed; reconnecting");
    }
  });
  try {
    const connecting = redis.connect();
    connecting.catch(() => undefined);
    await withTimeout(connecting, connectTimeoutMs + 500, () => new Error(`no answer within ${connectTimeoutMs} ms`));
  } catch (e) {
    redis.disconnect();
    throw new Error(`can not reach Redis at ${shown}: ${errorText(lastError ?? e)}; start redis-server or fix --redis`, { cause: lastError ?? e });
  }
  try {
    await checkServer(redis, shown, o.log);
  } catch (e) {
    redis.disconnect();
    throw e;
  }
  started = true;
  const target = redisTarget(url);
  // Through Sentinel or on Redis Cluster: the primary's failover epoch goes into every fencing token.
  const owner = slotOwner;
  const epoch =
    target.kind === "sentinel"
      ? (at: { readonly host: string; readonly port: number }) => sentinelEpoch(target.options, at)
      : owner !== undefined
        ? (at: { readonly host: string; readonly port: number }) => slotOwnerEpoch(owner, at)
        : undefined;
  return new RedisClusterState(redis, { ...o.state, ...(o.cluster !== undefined ? { cluster: o.cluster } : {}), url: shown, ownsConnection: true, ...(epoch !== undefined ? { epoch } : {}) });
}

async function checkServer(redis: Redis, url: string, log: Logger | undefined): Promise<void> {
  const server = parseInfo(await redis.info("server"));
  const version = server.get("redis_version") ?? "0.0.0";
  const [major = 0, minor = 0] = version.split(".").map((p) => Number.parseInt(p, 10));
  if (major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1])) {
    throw new Error(`Redis at ${url} is version ${version}; floe needs ${MIN_VERSION.join(".")} or newer`);
  }
  const policy = await evictionPolicy(redis);
  if (policy === undefined) {
    log?.warn({ url }, "could not read Redis's maxmemory-policy (CONFIG and INFO refused); make sure it is noeviction");
  } else if (policy !== "noeviction") {
    throw new Error(`Redis at ${url} evicts keys (maxmemory-policy ${policy}); floe keeps runs and locks there and needs noeviction: CONFIG SET maxmemory-policy noeviction`);
  }
  const persistence = parseInfo(await redis.info("persistence").catch(() => ""));
  if (persistence.get("aof_enabled") === "0") {
    log?.warn({ url }, "Redis has append-only persistence off; pending runs and locks written since its last snapshot are lost if it crashes (set appendonly yes)");
  }
}

/** `maxmemory-policy` from CONFIG GET, or from INFO memory where CONFIG is disabled. */
async function evictionPolicy(redis: Redis): Promise<string | undefined> {
  try {
    const r: unknown = await redis.config("GET", "maxmemory-policy");
    if (Array.isArray(r) && typeof r[1] === "string") return r[1];
    if (r !== null && typeof r === "object" && !Array.isArray(r)) {
      const v = (r as Record<string, unknown>)["maxmemory-policy"];
      if (typeof v === "string") return v;
    }
  } catch {
    // CONFIG may be renamed or refused by ACLs; INFO says the same.
  }
  try {
    return parseInfo(await redis.info("memory")).get("maxmemory_policy");
  } catch {
    return undefined;
  }
}

function parseInfo(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

function withTimeout<T>(p: Promise<T>, ms: number, err: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(err()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A socket error's code (ECONNREFUSED, ENOTFOUND…) says it best; anything else by its message. */
function errorText(e: unknown): string {
  const code = errorCode(e);
  return code !== undefined && /^E[A-Z]+$/.test(code) ? code : errorMessage(e);
}

