/**
 * Host settings from flags and `FLOE_<NAME>` environment variables (flags win), checked
 * once and frozen (DESIGN §6.1).
 */
import { DEFAULT_CLUSTER } from "../store/cluster-name.js";
import { existsSync } from "node:fs";
import { cpus, homedir } from "node:os";
import { resolve } from "node:path";
import { SERVE } from "./commands.js";
import { LOG_FORMATS, logFormatOf, type LogFormat } from "./log-format.js";
import { parseCommand, stringFlag, UsageError, type Parsed } from "./flags.js";
import { shortHostname } from "./wiring.js";
import { DEFAULT_LEASE_MS } from "../hub/lease.js";
import { parseDuration } from "../flows/duration.js";
import { DEFAULT_HISTORY } from "../store/stream-defaults.js";
import { parseByteSize } from "./byte-size.js";

export interface Settings {
  /** The config file; undefined when none was given and the working directory has no config.yml. */
  readonly conf?: string;
  readonly root: string;
  readonly host: string;
  readonly tags: readonly string[];
  readonly bindHost: string;
  readonly bindPort: number;
  readonly admin?: string;
  readonly slots: number;
  readonly nats?: string;
  readonly redis?: string;
  /** The cluster's name: hosts with the same NATS, Redis and name form one cluster. */
  readonly cluster: string;
  /** Milliseconds a host's lease lasts without a heartbeat (cluster mode). */
  readonly leaseMs: number;
  readonly logLevel: string;
  /** How the host's own log is written: auto (pretty on a terminal), json or pretty. */
  readonly logFormat: LogFormat;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Seconds a graceful stop waits for active runs before killing their tasks. */
  readonly stopGrace: number;
  /** The JetStream stream of run events and log lines (cluster mode). */
  readonly stream: StreamSettings;
}

export interface StreamSettings {
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly replicas: number;
}

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;

/** Settings from `floe serve` flags; throws a UsageError naming the first bad one. */
export function parseSettings(args: readonly string[], env: NodeJS.ProcessEnv): Settings {
  return settingsFrom(parseCommand(SERVE, args, env));
}

/** The config file floe reads when --conf is not given, as the original floe did. */
export const DEFAULT_CONF = "config.yml";

export function settingsFrom(p: Parsed, cwd = process.cwd()): Settings {
  const get = (k: string): string | undefined => stringFlag(p, k);
  const conf = (get("conf") || undefined) ?? (existsSync(resolve(cwd, DEFAULT_CONF)) ? DEFAULT_CONF : undefined);
  const host = get("host") ?? shortHostname();
  if (!SAFE_NAME.test(host)) throw new UsageError(`--host=${host}: a host name may only contain letters, digits, "_" and "-"`);
  const tags = (get("tags") ?? "").split(",").map((t) => t.trim()).filter((t) => t !== "");
  for (const t of tags) if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(t)) throw new UsageError(`--tags: "${t}" is not a valid tag`);
  const bind = get("bind") ?? "127.0.0.1:8080";
  const colon = bind.lastIndexOf(":");
  const bindHost = colon > 0 ? bind.slice(0, colon).replace(/^\[|\]$/g, "") : "127.0.0.1";
  const bindPort = Number(colon >= 0 ? bind.slice(colon + 1) : bind);
  if (!Number.isInteger(bindPort) || bindPort < 0 || bindPort > 65535) throw new UsageError(`--bind=${bind}: expected HOST:PORT`);
  const slotsText = get("slots");
  const slots = slotsText === undefined ? Math.max(1, cpus().length) : Number(slotsText);
  if (!Number.isInteger(slots) || slots < 1) throw new UsageError(`--slots=${slotsText}: expected a whole number of at least 1`);
  const graceText = get("stop-grace") ?? "30";
  const stopGrace = Number(graceText);
  if (!Number.isFinite(stopGrace) || stopGrace < 0) throw new UsageError(`--stop-grace=${graceText}: expected seconds`);
  const nats = get("nats") || undefined;
  const redis = get("redis") || undefined;
  if ((nats === undefined) !== (redis === undefined)) throw new UsageError("cluster mode needs both --nats=URL and --redis=URL (or neither, for an embedded host)");
  const cluster = get("cluster") ?? DEFAULT_CLUSTER;
  if (!SAFE_NAME.test(cluster)) throw new UsageError(`--cluster=${cluster}: a cluster name may only contain letters, digits, "_" and "-"`);
  const leaseText = get("lease") ?? String(DEFAULT_LEASE_MS / 1000);
  const leaseS = Number(leaseText);
  if (!Number.isFinite(leaseS) || leaseS < 0.3 || leaseS > 600) throw new UsageError(`--lease=${leaseText}: expected seconds between 0.3 and 600`);
  const logLevel = get("log-level") ?? "info";
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(logLevel)) throw new UsageError(`--log-level=${logLevel}: expected fatal, error, warn, info, debug, trace or silent`);
  const logFormatText = get("log-format") ?? "auto";
  const logFormat = logFormatOf(logFormatText);
  if (logFormat === undefined) throw new UsageError(`--log-format=${logFormatText}: expected ${LOG_FORMATS.join(", ")}`);
  const tlsCert = get("tls-cert");
  const tlsKey = get("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
  const stream = streamSettings(get);
  const rootText = get("root") ?? "~/.floe";
  const root = rootText.startsWith("~/") ? resolve(homedir(), rootText.slice(2)) : resolve(rootText);
  const opt = <T>(k: string, v: T | undefined) => (v === undefined || v === "" ? {} : { [k]: v });
  return Object.freeze({
    ...opt("conf", conf === undefined ? undefined : resolve(cwd, conf)),
    root,
    host,
    tags,
    bindHost,
    bindPort,
    slots,
    logLevel,
    logFormat,
    stopGrace,
    cluster,
    leaseMs: Math.round(leaseS * 1000),
    stream,
    ...opt("admin", get("admin")),
    ...opt("nats", get("nats")),
    ...opt("redis", get("redis")),
    ...opt("tlsCert", tlsCert),
    ...opt("tlsKey", tlsKey),
  });
}

function streamSettings(get: (k: string) => string | undefined): StreamSettings {
  const bytesText = get("stream-max-bytes");
  const maxBytes = bytesText === undefined ? DEFAULT_HISTORY.maxBytes : parseByteSize(bytesText);
  if (maxBytes === undefined || maxBytes < 1024 * 1024) throw new UsageError(`--stream-max-bytes=${bytesText}: expected a size of at least 1MiB, e.g. 512MiB or 2GiB`);
  const ageText = get("stream-max-age");
  const maxAgeMs = ageText === undefined ? DEFAULT_HISTORY.maxAgeMs : parseDuration(ageText);
  if (maxAgeMs === undefined || maxAgeMs < 1000) throw new UsageError(`--stream-max-age=${ageText}: expected a duration of at least 1s, e.g. 36h or 7d`);
  const replicasText = get("stream-replicas") ?? "1";
  const replicas = Number(replicasText);
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new UsageError(`--stream-replicas=${replicasText}: expected 1 to 5 (NATS's limit)`);
  return Object.freeze({ maxBytes, maxAgeMs, replicas });
}
