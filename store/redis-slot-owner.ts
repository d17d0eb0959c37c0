/**
 * Redis Cluster, for a floe cluster whose keys all sit in one hash slot (`floe:{<cluster>}:…`,
 * store/redis-keys.ts): a host needs only the primary that owns that slot, so it talks to it
 * on an ordinary connection rather than through a cluster client that routes each command.
 * A connector (ioredis's `Connector` option) asks the seed nodes, on every connection made,
 * which primary owns the slot — the one with the highest config epoch, where nodes disagree
 * in the middle of a failover — and connects there; a reply that says the slot moved
 * (`MOVED`, `READONLY`, `CLUSTERDOWN`) makes the state drop the connection and make it again
 * (store/redis-state.ts), which asks again.
 *
 * The owner's config epoch is the failover epoch that goes into fencing tokens, as Sentinel's
 * is (store/sentinel-epoch.ts): Redis Cluster gives a replica it promotes a config epoch
 * above every other node's, so tokens of the new primary are above all of the old one's,
 * even those whose writes never reached it.
 */
import { createConnection } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { AbstractConnector, Redis, type RedisOptions } from "ioredis";

export interface SlotOwnerOptions {
  /** Nodes of the Redis Cluster to ask; any of them will do while one answers. */
  readonly seeds: readonly { readonly host: string; readonly port: number }[];
  /** A key of the floe cluster (its prefix): the slot is the one it hashes to. */
  readonly key: string;
  readonly username?: string;
  readonly password?: string;
  /** How long each node may take to connect and answer. @defaultValue 1000 */
  readonly timeoutMs?: number;
}

export interface SlotOwner {
  readonly host: string;
  readonly port: number;
  /** The owner's config epoch. */
  readonly epoch: number;
}

/** One node's line of CLUSTER NODES, as much of it as matters here. */
interface NodeLine {
  readonly host: string;
  readonly port: number;
  readonly myself: boolean;
  readonly primary: boolean;
  readonly failing: boolean;
  readonly epoch: number;
  readonly slots: readonly (readonly [number, number])[];
}

/** CLUSTER NODES's text, line by line (`<id> <ip:port@cport[,hostname]> <flags> <primary> <ping> <pong> <epoch> <link> <slot>…`). */
export function parseClusterNodes(text: string): NodeLine[] {
  const out: NodeLine[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(" ");
    if (f.length < 8) continue;
    const addr = (f[1] ?? "").split("@")[0] ?? "";
    const colon = addr.lastIndexOf(":");
    const host = addr.slice(0, colon).replace(/^\[|\]$/g, "");
    const port = Number(addr.slice(colon + 1));
    const flags = (f[2] ?? "").split(",");
    const slots: [number, number][] = [];
    for (const s of f.slice(8)) {
      if (s.startsWith("[")) continue; // a slot being migrated or imported
      const [a, b] = s.split("-").map(Number);
      if (a !== undefined && Number.isInteger(a)) slots.push([a, b !== undefined && Number.isInteger(b) ? b : a]);
    }
    out.push({ host, port, myself: flags.includes("myself"), primary: flags.includes("master"), failing: flags.includes("fail") || flags.includes("fail?"), epoch: Number(f[6]), slots });
  }
  return out;
}

function owns(n: NodeLine, slot: number): boolean {
  return n.slots.some(([a, b]) => slot >= a && slot <= b);
}

async function ask<T>(at: { readonly host: string; readonly port: number }, o: SlotOwnerOptions, f: (c: Redis) => Promise<T>): Promise<T> {
  const ms = o.timeoutMs ?? 1000;
  const c = new Redis({ host: at.host, port: at.port, lazyConnect: true, connectTimeout: ms, commandTimeout: ms, maxRetriesPerRequest: 0, enableOfflineQueue: true, retryStrategy: () => null, ...(o.username !== undefined ? { username: o.username } : {}), ...(o.password !== undefined ? { password: o.password } : {}) });
  c.on("error", () => undefined);
  try {
    await c.connect();
    return await f(c);
  } finally {
    c.disconnect();
  }
}

/** The slot's owner as the seeds see it: the primary not marked failing with the highest config epoch among those that say they own it. */
export async function findSlotOwner(o: SlotOwnerOptions): Promise<SlotOwner> {
  const answers = await Promise.all(
    o.seeds.map((s) =>
      ask(s, o, async (c) => ({ slot: Number(await c.call("CLUSTER", "KEYSLOT", o.key)), nodes: parseClusterNodes(String(await c.call("CLUSTER", "NODES"))) })).catch(() => undefined),
    ),
  );
  let best: SlotOwner | undefined;
  for (const a of answers) {
    if (a === undefined) continue;
    for (const n of a.nodes) {
      if (!n.primary || n.failing || !owns(n, a.slot) || !Number.isSafeInteger(n.epoch)) continue;
      if (best === undefined || n.epoch > best.epoch) best = { host: n.host, port: n.port, epoch: n.epoch };
    }
  }
  if (best === undefined) {
    const seeds = o.seeds.map((s) => `${s.host}:${s.port}`).join(", ");
    throw new Error(answers.every((a) => a === undefined) ? `no Redis Cluster node answered (${seeds})` : `no primary of the Redis Cluster at ${seeds} owns the slot of ${o.key}`);
  }
  return best;
}

/**
 * The config epoch of the node at `at`, if it is a primary that owns the key's slot; throws
 * otherwise (the connection reached a node that is no longer the owner: it must be made again).
 */
export async function slotOwnerEpoch(o: SlotOwnerOptions, at: { readonly host: string; readonly port: number }): Promise<number> {
  return ask(at, o, async (c) => {
    const slot = Number(await c.call("CLUSTER", "KEYSLOT", o.key));
    const me = parseClusterNodes(String(await c.call("CLUSTER", "NODES"))).find((n) => n.myself);
    if (me === undefined || !me.primary || !owns(me, slot) || !Number.isSafeInteger(me.epoch)) throw new Error(`Redis at ${at.host}:${at.port} is not the primary of slot ${slot}`);
    return me.epoch;
  });
}

/** ioredis's `Connector`: each connection is made to the slot's owner as the seeds say it is then. */
export function slotOwnerConnector(o: SlotOwnerOptions): NonNullable<RedisOptions["Connector"]> {
  return class SlotOwnerConnector extends AbstractConnector {
    private readonly tls: ConnectionOptions | undefined;
    constructor(options: unknown) {
      const opts = options as { disconnectTimeout?: number; tls?: ConnectionOptions };
      super(opts.disconnectTimeout ?? 2000);
      this.tls = opts.tls;
    }

    async connect(): Promise<NonNullable<AbstractConnector["stream"]>> {
      this.connecting = true;
      const at = await findSlotOwner(o);
      // ioredis's own message for a connection closed while it was being made.
      if (!this.connecting) throw new Error("Connection is closed.");
      const stream = this.tls !== undefined ? tlsConnect({ ...this.tls, host: at.host, port: at.port }) : createConnection({ host: at.host, port: at.port });
      stream.once("error", (err: Error) => {
        this.firstError = err;
      });
      this.stream = stream;
      return stream;
    }
  };
}
