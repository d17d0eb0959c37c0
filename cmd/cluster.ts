/**
 * The parts a host needs to join a cluster: the shared state and sessions in Redis, the
 * event bus and host-to-host link on NATS. Opening refuses (a thrown Error whose message
 * says what is wrong and how to fix it) when either broker is unreachable or unfit, and
 * closes whatever it had opened already.
 */
import type { Logger } from "pino";
import { RedisSessionStore } from "../hub/api/redis-sessions.js";
import { NatsLink } from "../hub/nats-link.js";
import { runEventCodec } from "../hub/run-event-wire.js";
import type { RunEvent } from "../hub/types.js";
import { NatsBus } from "../store/nats-bus.js";
import { openNats, type HistoryOptions, type NatsHandle } from "../store/nats-connect.js";
import { openRedis } from "../store/redis-connect.js";
import type { RedisClusterState } from "../store/redis-state.js";

export interface ClusterParts {
  readonly state: RedisClusterState;
  readonly nats: NatsHandle;
  readonly bus: NatsBus<RunEvent>;
  readonly link: NatsLink;
  readonly sessions: RedisSessionStore;
  /** Waits until NATS has this host's subscriptions (requests and events reach it). */
  ready(): Promise<void>;
  /** Link, bus, then the connections: nothing is used after its connection closed. */
  close(): Promise<void>;
}

export interface ClusterSettings {
  readonly nats: string;
  readonly redis: string;
  readonly cluster: string;
  readonly host: string;
  /** The event stream's limits and copies; the defaults when absent. */
  readonly stream?: HistoryOptions;
}

export async function openCluster(s: ClusterSettings, log: Logger): Promise<ClusterParts> {
  const state = await openRedis(s.redis, { cluster: s.cluster, host: s.host, log: log.child({ part: "redis" }) });
  let nats: NatsHandle;
  try {
    nats = await openNats(s.nats, { cluster: s.cluster, host: s.host, log: log.child({ part: "nats" }), ...(s.stream !== undefined ? { history: s.stream } : {}) });
  } catch (e) {
    await state.close().catch(() => undefined);
    throw e;
  }
  const bus = new NatsBus<RunEvent>(nats, runEventCodec(nats.names));
  const link = new NatsLink(nats);
  const sessions = new RedisSessionStore(state.redis, state.keys);
  let closing: Promise<void> | undefined;
  return {
    state,
    nats,
    bus,
    link,
    sessions,
    async ready() {
      await bus.ready();
      await nats.nc.flush();
    },
    close() {
      closing ??= (async () => {
        await link.close().catch((e: unknown) => log.warn({ err: e }, "closing the cluster link failed"));
        await bus.close().catch((e: unknown) => log.warn({ err: e }, "closing the event bus failed"));
        await nats.close().catch((e: unknown) => log.warn({ err: e }, "closing NATS failed"));
        await state.close().catch((e: unknown) => log.warn({ err: e }, "closing Redis failed"));
      })();
      return closing;
    },
  };
}
