/**
 * What `--redis` may be (DESIGN §6.1): `redis://` and `rediss://` URLs as ioredis reads them,
 * and `redis+sentinel://[user:pass@]h1:26379,h2:26379/MASTER` for a primary found through
 * Redis Sentinel, followed across failovers (ioredis asks the sentinels where the primary is
 * on every reconnection). The user and password are the data nodes'; sentinels are asked
 * without them. `redis+cluster://[user:pass@]h1:6379,h2:6379` for Redis Cluster: the nodes
 * are seeds, asked on every connection which primary owns the floe cluster's slot
 * (store/redis-slot-owner.ts); the user and password are the nodes'.
 */
/** What ioredis needs to find a primary through its sentinels. */
export interface SentinelOptions {
  readonly sentinels: { host: string; port: number }[];
  /** The name the sentinels monitor the primary under. */
  readonly name: string;
  readonly username?: string;
  readonly password?: string;
}

/** The seed nodes of a Redis Cluster, and the nodes' user and password. */
export interface ClusterSeeds {
  readonly seeds: { host: string; port: number }[];
  readonly username?: string;
  readonly password?: string;
}

export type RedisTarget = { readonly kind: "url"; readonly url: string } | { readonly kind: "sentinel"; readonly options: SentinelOptions } | { readonly kind: "cluster"; readonly options: ClusterSeeds };

const SENTINEL = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/([^/?#]+)\/?$/;
const CLUSTER = /^redis\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/;

/** Where to connect; throws an Error saying what is wrong with a malformed sentinel or cluster URL. */
export function redisTarget(url: string): RedisTarget {
  if (url.startsWith("redis+cluster:")) {
    const m = CLUSTER.exec(url);
    if (m === null) throw new Error("expected redis+cluster://[user:pass@]HOST:PORT[,HOST:PORT…]");
    const [, user, password, hostList = ""] = m;
    return { kind: "cluster", options: { seeds: hostPorts(hostList, 6379, "node"), ...credentials(user, password) } };
  }
  if (!url.startsWith("redis+sentinel:")) return { kind: "url", url };
  const m = SENTINEL.exec(url);
  if (m === null) throw new Error("expected redis+sentinel://[user:pass@]HOST:PORT[,HOST:PORT…]/MASTER");
  const [, user, password, hostList = "", master = ""] = m;
  return { kind: "sentinel", options: { sentinels: hostPorts(hostList, 26379, "sentinel"), name: decodeURIComponent(master), ...credentials(user, password) } };
}

/** `h1:p1,[::1]:p2,h3` (a missing port: `dflt`). */
function hostPorts(list: string, dflt: number, what: string): { host: string; port: number }[] {
  return list.split(",").map((hp) => {
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(hp);
    const [host, port] = v6 !== null ? [v6[1] ?? "", v6[2]] : [hp.split(":")[0] ?? "", hp.split(":")[1]];
    const n = port === undefined ? dflt : Number(port);
    if (host === "" || !Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${what} "${hp}" is not HOST:PORT`);
    return { host, port: n };
  });
}

function credentials(user: string | undefined, password: string | undefined): { username?: string; password?: string } {
  const decode = (s: string | undefined): string | undefined => (s === undefined || s === "" ? undefined : decodeURIComponent(s));
  const username = decode(user);
  const pass = decode(password);
  return { ...(username !== undefined ? { username } : {}), ...(pass !== undefined ? { password: pass } : {}) };
}
