/**
 * Opens a host's NATS connection for a cluster: reconnects forever once up, but refuses to
 * start (a thrown Error saying what is wrong and how to fix it) when NATS can not be reached
 * or has JetStream off, and makes sure the stream that keeps run events and log lines
 * exists with this host's retention limits. The bus (store/nats-bus.ts) and the cluster
 * link (hub/nats-link.ts) share what it returns; the handle owns the connection, so stop
 * in this order: link.close(), bus.close(), handle.close().
 *
 * Checked against nats-server 2.9: a file-storage limits stream (max_age, max_bytes,
 * discard old), core publish, request/reply with no-responders, and ordered pull consumers
 * with a single filter subject (2.9.4+, checked at start).
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type StreamInfo,
} from "@nats-io/jetstream";
import type { Logger } from "pino";
import { errorCode, errorMessage } from "../flows/errors.js";
import { natsNames, type NatsNames } from "./nats-subjects.js";
import { redactUrl } from "./redact-url.js";
import { DEFAULT_HISTORY } from "./stream-defaults.js";

/** How long run events and log lines are kept, and in how many copies. */
export interface HistoryOptions {
  /** @defaultValue 7 days */
  readonly maxAgeMs?: number;
  /** The stream's size cap; the oldest events go first. @defaultValue 1 GiB */
  readonly maxBytes?: number;
  /** Copies kept by a NATS cluster (JetStream's num_replicas, 1 to 5). @defaultValue 1 */
  readonly replicas?: number;
}

export interface NatsOptions {
  /** @defaultValue DEFAULT_CLUSTER ("floe", store/cluster-name.ts) */
  readonly cluster?: string;
  /** This host's name (the subject its requests arrive on). */
  readonly host: string;
  readonly log?: Logger;
  readonly history?: HistoryOptions;
  /** How long the first connection may take before the host refuses to start. @defaultValue 3000 */
  readonly connectTimeoutMs?: number;
}

/** What the bus and the link need: the connection, JetStream, and the cluster's names. */
export interface NatsHandle {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly names: NatsNames;
  readonly host: string;
  readonly url: string;
  readonly log: Logger | undefined;
  /** False between a disconnect and the next reconnect. */
  readonly connected: boolean;
  /** Flushes what is buffered (briefly) and closes the connection; idempotent. */
  close(): Promise<void>;
}

export { DEFAULT_HISTORY } from "./stream-defaults.js";

/** The oldest nats-server with the JetStream API this code uses (@nats-io/jetstream's consumers). */
const MIN_SERVER = [2, 9, 4] as const;

/** `servers`: a NATS URL, or several separated by commas (one cluster of servers). */
export async function openNats(servers: string, o: NatsOptions): Promise<NatsHandle> {
  const names = natsNames(o.cluster);
  // Messages and logs show the URL without its password.
  const url = redactUrl(servers);
  const history = { ...DEFAULT_HISTORY, ...definedOnly(o.history) };
  if (!(history.maxAgeMs >= 1000) || !Number.isSafeInteger(history.maxBytes) || history.maxBytes < 1024 * 1024) {
    throw new Error(`event history limits must be at least 1 s and 1 MiB (got ${history.maxAgeMs} ms, ${history.maxBytes} bytes)`);
  }
  if (!Number.isInteger(history.replicas) || history.replicas < 1 || history.replicas > 5) throw new Error(`stream replicas must be 1 to 5 (got ${history.replicas})`);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: servers.split(",").map((s) => s.trim()),
      name: `floe ${o.host}`,
      noEcho: true,
      timeout: o.connectTimeoutMs ?? 3000,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      reconnectJitter: 250,
      waitOnFirstConnect: false,
    });
  } catch (e) {
    throw new Error(`can not reach NATS at ${url} (${errorText(e)}); start nats-server with JetStream (nats-server -js) or fix --nats`, { cause: e });
  }
  try {
    checkServer(nc, url);
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc, { timeout: 5000 });
    } catch (e) {
      throw new Error(jsOff(url, errorText(e)), { cause: e });
    }
    await ensureStream(jsm, names, history, url);
    return handle(nc, jetstream(nc, { timeout: 5000 }), jsm, names, url, o);
  } catch (e) {
    await nc.close().catch(() => undefined);
    throw e;
  }
}

function jsOff(url: string, why?: string): string {
  return `NATS at ${url} has JetStream off${why !== undefined ? ` (${why})` : ""}; start nats-server with -js (floe keeps run events and logs in a stream)`;
}

function checkServer(nc: NatsConnection, url: string): void {
  const info = nc.info;
  const version = info?.version ?? "0.0.0";
  const parts = version.split(/[.-]/).map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < MIN_SERVER.length; i++) {
    const have = parts[i] ?? 0;
    const need = MIN_SERVER[i] as number;
    if (have > need) break;
    if (have < need) throw new Error(`NATS at ${url} is nats-server ${version}; floe needs ${MIN_SERVER.join(".")} or newer`);
  }
  if (info?.jetstream !== true) throw new Error(jsOff(url));
}

/** Creates the event stream, or brings an existing one to these limits. */
async function ensureStream(jsm: JetStreamManager, names: NatsNames, h: Required<HistoryOptions>, url: string): Promise<void> {
  const want = {
    subjects: [names.allEvents],
    max_age: Math.round(h.maxAgeMs * 1e6),
    max_bytes: h.maxBytes,
    discard: DiscardPolicy.Old,
    num_replicas: h.replicas,
  };
  const refused = (e: unknown) =>
    new Error(`NATS at ${url} refused floe's event stream ${names.stream} (${errorText(e)}); check the server's JetStream limits (max_file_store), permissions, and that --stream-replicas=${h.replicas} is at most the number of JetStream servers in its cluster`, { cause: e });
  for (let attempt = 0; ; attempt++) {
    let si: StreamInfo | undefined;
    try {
      si = await jsm.streams.info(names.stream);
    } catch (e) {
      if (!(e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound)) throw refused(e);
    }
    try {
      if (si === undefined) {
        await jsm.streams.add({
          name: names.stream,
          description: `floe run events and log lines of cluster ${names.cluster}`,
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          ...want,
        });
        return;
      }
      const c = si.config;
      if (c.storage !== StorageType.File) {
        throw new Error(`NATS at ${url} has a stream ${names.stream} with ${c.storage} storage; floe keeps its history on file: delete that stream (nats stream rm ${names.stream}) and start again`);
      }
      const same = c.subjects.length === 1 && c.subjects[0] === names.allEvents && c.max_age === want.max_age && c.max_bytes === want.max_bytes && c.discard === want.discard && c.num_replicas === want.num_replicas;
      if (!same) await jsm.streams.update(names.stream, want);
      return;
    } catch (e) {
      // Two hosts starting at once may both try to create it: look again, once.
      if (attempt === 0 && e instanceof JetStreamApiError) continue;
      if (e instanceof JetStreamApiError) throw refused(e);
      throw e;
    }
  }
}

function handle(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, names: NatsNames, url: string, o: NatsOptions): NatsHandle {
  let connected = true;
  const log = o.log;
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          connected = false;
          log?.warn({ server: s.server }, "NATS disconnected; reconnecting");
          break;
        case "reconnect":
          connected = true;
          log?.info({ server: s.server }, "NATS reconnected");
          break;
        case "error":
          log?.warn({ err: s.error }, "NATS error");
          break;
        case "slowConsumer":
          log?.warn({ subject: s.sub.getSubject(), pending: s.pending }, "NATS slow consumer");
          break;
        default:
          break;
      }
    }
  })().catch(() => undefined);
  let closing: Promise<void> | undefined;
  return {
    nc,
    js,
    jsm,
    names,
    host: o.host,
    url,
    log,
    get connected() {
      return connected && !nc.isClosed();
    },
    close() {
      closing ??= (async () => {
        if (nc.isClosed()) return;
        // Events published just before closing should still go out, but never wait long.
        if (connected) await Promise.race([nc.flush().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
        await nc.close();
      })();
      return closing;
    },
  };
}

/** The message with its code, where the message does not say it: a JetStream API code (10059…) or a socket's (ECONNREFUSED…). */
function errorText(e: unknown): string {
  const code = e instanceof JetStreamApiError ? String(e.code) : errorCode(e);
  const message = errorMessage(e);
  return code !== undefined && !message.includes(code) ? `${message} [${code}]` : message;
}


function definedOnly(h: HistoryOptions | undefined): Partial<HistoryOptions> {
  const out: { maxAgeMs?: number; maxBytes?: number; replicas?: number } = {};
  if (h?.maxAgeMs !== undefined) out.maxAgeMs = h.maxAgeMs;
  if (h?.maxBytes !== undefined) out.maxBytes = h.maxBytes;
  if (h?.replicas !== undefined) out.replicas = h.replicas;
  return out;
}
