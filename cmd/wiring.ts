/** Builds the parts of a host from settings: used by `floe serve` and `floe run`. */
import { hostname } from "node:os";
import { isatty } from "node:tty";
import { pino, type Logger } from "pino";
import { hostCommands } from "../agent/host-commands.js";
import { runTask } from "../agent/run-task.js";
import type { Config } from "../flows/model.js";
import { LocalClusterState } from "../hub/cluster-state.js";
import { Hub } from "../hub/hub.js";
import type { RunEvent } from "../hub/types.js";
import type { ClusterParts } from "./cluster.js";
import { chooseFormat, prettyDestination, type LogFormat } from "./log-format.js";
import { LocalBus } from "../store/bus.js";
import { NatsObjects } from "../store/nats-objects.js";
import type { TaskSecrets } from "../hub/secrets.js";
import type { RunEndListener } from "../hub/notifier.js";

/** The root logger, on stderr: JSON lines, or one line for people per entry (log-format.ts). */
export function makeLogger(level: string, format: LogFormat = "json"): Logger {
  const err = pino.destination(2);
  const pretty = chooseFormat(format, 2) === "pretty";
  // Colours only where a person looks, and not for those who asked for none (no-color.org).
  const color = pretty && isatty(2) && (process.env["NO_COLOR"] ?? "") === "";
  return pino({ level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, pretty ? prettyDestination(err, color) : err);
}

export function shortHostname(): string {
  return hostname().split(".")[0] ?? "localhost";
}

export interface EmbeddedOptions {
  readonly config: Config;
  readonly configDir: string;
  readonly root: string;
  readonly host: string;
  readonly tags: readonly string[];
  readonly slots: number;
  readonly log: Logger;
  readonly console?: (line: string) => void;
  readonly secrets?: TaskSecrets;
  readonly notifier?: RunEndListener;
}

/** An embedded host: in-process bus and cluster state, nothing else to install. */
export function embeddedHub(o: EmbeddedOptions): Hub {
  return new Hub({
    ...o,
    runTask,
    commands: hostCommands,
    bus: new LocalBus<RunEvent>(),
    state: new LocalClusterState(),
  });
}

/**
 * A host of a cluster: events and requests over NATS, shared state in Redis, artifacts in a
 * JetStream object store bucket. The bucket keeps an entry twice the runs' retention
 * (`retention.max-age`), and an upload renews an entry older than that retention, so an
 * object outlives every kept run that references it (README, "Artifacts").
 */
export function clusterHub(o: EmbeddedOptions & { readonly parts: ClusterParts; readonly leaseMs: number }): Hub {
  const { parts, ...rest } = o;
  const keepMs = o.config.common.retention.maxAgeMs;
  const remoteObjects = (local: ConstructorParameters<typeof NatsObjects>[1]) => new NatsObjects(parts.nats, local, { ttlMs: 2 * keepMs, refreshAfterMs: keepMs });
  return new Hub({ ...rest, runTask, commands: hostCommands, bus: parts.bus, state: parts.state, link: parts.link, clustered: true, remoteObjects });
}
