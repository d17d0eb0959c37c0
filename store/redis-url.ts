/**
 * What `--redis` may be (DESIGN §6.1): `redis://` and `rediss://` URLs as ioredis reads them,
 * and `redis+sentinel://[user:pass@]h1:26379,h2:26379/MASTER` for a primary found through
 * Redis Sentinel, followed across failovers (ioredis asks the sentinels where the primary is
 * on every reconnection). The user and password are the data nodes'; sentinels are asked
 * without them.
 */
/** What ioredis needs to find a primary through its sentinels. */
export interface SentinelOptions {
  readonly sentinels: { host: string; port: number }[];
  /** The name the sentinels monitor the primary under. */
  readonly name: string;
  readonly username?: string;
  readonly password?: string;
}

export type RedisTarget = { readonly kind: "url"; readonly url: string } | { readonly kind: "sentinel"; readonly options: SentinelOptions };

const SENTINEL = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/([^/?#]+)\/?$/;

/** Where to connect; throws an Error saying what is wrong with a malformed sentinel URL. */
export function redisTarget(url: string): RedisTarget {
  if (!url.startsWith("redis+sentinel:")) return { kind: "url", url };
  const m = SENTINEL.exec(url);
  if (m === null) throw new Error("expected redis+sentinel://[user:pass@]HOST:PORT[,HOST:PORT…]/MASTER");
  const [, user, password, hostList = "", master = ""] = m;
  const sentinels = hostList.split(",").map((hp) => {
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(hp);
    const [host, port] = v6 !== null ? [v6[1] ?? "", v6[2]] : [hp.split(":")[0] ?? "", hp.split(":")[1]];
    const n = port === undefined ? 26379 : Number(port);
    if (host === "" || !Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`sentinel "${hp}" is not HOST:PORT`);
    return { host, port: n };
  });
  const decode = (s: string | undefined): string | undefined => (s === undefined || s === "" ? undefined : decodeURIComponent(s));
  const username = decode(user);
  const pass = decode(password);
  return { kind: "sentinel", options: { sentinels, name: decodeURIComponent(master), ...(username !== undefined ? { username } : {}), ...(pass !== undefined ? { password: pass } : {}) } };
}
