/** Builds the parts of a host from settings: used by `floe serve` and `floe run`. */
import { hostname } from "node:os";
import { pino, type Logger } from "pino";
import { hostCommands } from "../agent/host-commands.js";
import { runTask } from "../agent/run-task.js";
import type { Config } from "../flows/model.js";
import { LocalClusterState } from "../hub/cluster-state.js";
import { Hub } from "../hub/hub.js";
import type { RunEvent } from "../hub/types.js";
import type { ClusterParts } from "./cluster.js";
import { LocalBus } from "../store/bus.js";

export function makeLogger(level: string): Logger {
  return pino({ level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
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

/** A host of a cluster: events and requests over NATS, shared state in Redis. */
export function clusterHub(o: EmbeddedOptions & { readonly parts: ClusterParts; readonly leaseMs: number }): Hub {
  const { parts, ...rest } = o;
  return new Hub({ ...rest, runTask, commands: hostCommands, bus: parts.bus, state: parts.state, link: parts.link, clustered: true });
}
