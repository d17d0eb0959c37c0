/**
 * `floe serve`: one host — hub, agent, triggers and the HTTP API — until a signal.
 * First SIGINT/SIGTERM: stop taking work, let active runs finish up to --stop-grace, then
 * kill what is left (it resumes at the next start). A second signal forces (cmd/floe.ts).
 * SIGHUP reloads the config; running runs keep the flow version they started with.
 */
import { lineBatch } from "./console-batch.js";
import { hostCommands } from "../agent/host-commands.js";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { formatDiagnostic } from "../flows/diagnostics.js";
import { validateHostConfig } from "../flows/load.js";
import { EMPTY_CONFIG } from "../flows/model.js";
import { buildApi } from "../hub/api/server.js";
import { FileSessionStore } from "../hub/api/sessions.js";
import { EventLog } from "../hub/event-log.js";
import { Metrics } from "../hub/metrics.js";
import { TriggerManager } from "../hub/triggers/manager.js";
import { SharedTriggerStore } from "../hub/triggers/store.js";
import { redactUrl } from "../store/redact-url.js";
import { openCluster, type ClusterParts } from "./cluster.js";
import { registerDashboard } from "../hub/dash/routes.js";
import type { Parsed } from "./flags.js";
import { lockRoot, RootInUse, type RootLock } from "./root-lock.js";
import { DEFAULT_CONF, settingsFrom, type Settings } from "./settings.js";
import type { Out } from "./validate.js";
import { clusterHub, embeddedHub, makeLogger } from "./wiring.js";
import { errorMessage } from "../flows/errors.js";
import { loadHostSecrets } from "./host-secrets.js";
import { Notifier } from "../hub/notifier.js";
import { notificationsView } from "../hub/notify-view.js";
import { clusterClock } from "../store/clock.js";

export interface Signals {
  readonly interrupt: AbortSignal;
  onReload(fn: () => void): void;
}

async function adminToken(s: Settings): Promise<{ token: string; path?: string }> {
  if (s.admin !== undefined) return { token: s.admin };
  const path = join(s.root, "admin-token");
  try {
    const t = (await readFile(path, "utf8")).trim();
    if (t.length >= 16) return { token: t, path };
  } catch {
    // none yet: make one
  }
  const token = randomBytes(24).toString("base64url");
  await mkdir(s.root, { recursive: true });
  await writeFile(path, token + "\n", { mode: 0o600 });
  return { token, path };
}

export async function serveCommand(flags: Parsed, io: Out, signals: Signals): Promise<number> {
  const s = settingsFrom(flags);
  await mkdir(s.root, { recursive: true });
  let lock: RootLock;
  try {
    lock = await lockRoot(s.root);
  } catch (e) {
    if (!(e instanceof RootInUse)) throw e;
    io.err(`floe serve: ${e.message}; nothing started`);
    return 1;
  }
  try {
    return await serveOnRoot(s, io, signals);
  } finally {
    await lock.release();
  }
}

async function serveOnRoot(s: Settings, io: Out, signals: Signals): Promise<number> {
  const log = makeLogger(s.logLevel, s.logFormat);
  let config = EMPTY_CONFIG;
  if (s.conf !== undefined) {
    const loaded = await validateHostConfig(s.conf);
    for (const d of loaded.diagnostics) io.err(formatDiagnostic(d));
    if (loaded.config === undefined) {
      io.err(`floe serve: ${s.conf} is not valid; nothing started`);
      return 1;
    }
    config = loaded.config;
  } else {
    // In a cluster such a host is useful: a claim carries the run's flow, so it executes runs other hosts adopted.
    const role = s.nats !== undefined ? `it executes runs that other hosts of cluster "${s.cluster}" adopted` : "without a cluster (--nats, --redis) it has nothing to run";
    io.err(`floe: no config file: this host has no flows of its own; ${role} (give one with --conf=FILE, or put ${DEFAULT_CONF} in ${process.cwd()})`);
  }
  let cluster: ClusterParts | undefined;
  if (s.nats !== undefined && s.redis !== undefined) {
    try {
      cluster = await openCluster({ nats: s.nats, redis: s.redis, cluster: s.cluster, host: s.host, stream: s.stream }, log);
    } catch (e) {
      io.err(`floe serve: ${errorMessage(e)}; nothing started`);
      return 1;
    }
  }
  const configDir = s.conf !== undefined ? dirname(s.conf) : process.cwd();
  const secrets = await loadHostSecrets(undefined, s.host, config, configDir, log);
  let pageBase: string | undefined;
  const notifier = new Notifier({ root: s.root, host: s.host, secrets, log: log.child({ part: "notify" }), settings: () => config.common.notify, pageBase: () => config.common.notify?.pageUrl ?? pageBase });
  // Before the hub starts: recovery may end runs, and their notifications are made then.
  await notifier.start();
  // The cluster's time (hub/cluster-clock.ts): Redis's in a cluster, so that a host whose wall
  // clock is stepped still fires timers on the cluster's schedule and stamps runs sanely.
  const cluster_ = cluster;
  await clusterClock.follow(cluster_ !== undefined ? () => cluster_.state.time() : () => Promise.resolve(Date.now()), { log: log.child({ part: "clock" }) });
  const consoleLines = lineBatch((text) => io.out(text));
  const parts = { config, configDir, root: s.root, host: s.host, tags: s.tags, slots: s.slots, log, console: consoleLines.line, secrets, notifier };
  const hub = cluster !== undefined ? clusterHub({ ...parts, parts: cluster, leaseMs: s.leaseMs }) : embeddedHub(parts);
  const { token, path: tokenPath } = await adminToken(s);
  const sessions = cluster?.sessions ?? new FileSessionStore(join(s.root, "sessions.json"));
  const events = new EventLog(hub.bus);
  const metrics = new Metrics(hub.bus, () => ({ ...notifier.counts, pending: notifier.pendingCount }));
  if (cluster !== undefined) metrics.followBus(() => cluster.bus.counts());
  try {
    await hub.start();
    await cluster?.ready();
  } catch (e) {
    io.err(`floe serve: could not start host ${s.host}: ${errorMessage(e)}`);
    await hub.stop(0).catch(() => undefined);
    await notifier.stop();
    await cluster?.close();
    return 1;
  }
  const triggers = new TriggerManager({
    commands: hostCommands,
    config,
    root: s.root,
    sink: hub,
    log: log.child({ part: "triggers" }),
    ...(config.common.gitKey ? { gitKey: config.common.gitKey } : {}),
    // In a cluster each timer tick and each poll is claimed, so it fires on one host only.
    ...(cluster !== undefined ? { store: new SharedTriggerStore(cluster.state, s.root) } : {}),
  });
  triggers.start();
  const tls = s.tlsCert !== undefined && s.tlsKey !== undefined ? { cert: await readFile(s.tlsCert), key: await readFile(s.tlsKey) } : undefined;
  const app = await buildApi({
    hub,
    log,
    adminToken: token,
    sessions,
    users: () => config.common.users,
    events,
    metrics,
    notifications: notificationsView(notifier, s.host, log.child({ part: "notify" }), cluster?.link),
    webhooks: triggers,
    ...(tls !== undefined ? { tls } : {}),
    extra: (a) => registerDashboard(a, { base: config.common.baseUrl }),
  });
  try {
    await app.listen({ host: s.bindHost, port: s.bindPort });
  } catch (e) {
    io.err(`floe serve: can not listen on ${s.bindHost}:${s.bindPort}: ${errorMessage(e)}`);
    await triggers.stop();
    await hub.stop(0);
    await notifier.stop();
    await cluster?.close();
    return 1;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : s.bindPort;
  const url = `${tls ? "https" : "http"}://${s.bindHost.includes(":") ? `[${s.bindHost}]` : s.bindHost}:${port}`;
  hub.advertise(`${url}${config.common.baseUrl}`);
  pageBase = url;
  // A host without tags says nothing of them (not "host vm []").
  io.err(`floe: host ${s.host}${s.tags.length > 0 ? ` [${s.tags.join(", ")}]` : ""} serving ${config.flows.length} flow(s) at ${url}${config.common.baseUrl}`);
  if (s.nats !== undefined) io.err(`floe: joined cluster "${s.cluster}" (NATS ${redactUrl(s.nats)}, Redis ${redactUrl(s.redis ?? "")}, lease ${s.leaseMs / 1000} s)`);
  io.err(`floe: dashboard ${url}/app/dash — log in with ${tokenPath !== undefined ? `the admin token in ${tokenPath}` : "the --admin token"}${config.common.users.length ? ` or a user of common.users` : ""}`);

  const conf = s.conf;
  signals.onReload(() => {
    if (conf === undefined) {
      log.warn("SIGHUP: this host has no config file; nothing to reload");
      return;
    }
    void (async () => {
      const next = await validateHostConfig(conf);
      if (next.config === undefined) {
        for (const d of next.diagnostics) io.err(formatDiagnostic(d));
        log.error({ conf }, "reload refused: the config is not valid; keeping the old one");
        return;
      }
      config = next.config;
      // Before the flows that may name new secrets can start a task.
      await loadHostSecrets(secrets, s.host, config, configDir, log);
      hub.reload(config);
      triggers.reload(config);
      log.info({ flows: config.flows.length }, "config reloaded");
    })().catch((e: unknown) => {
      // A bug while reloading must not take the host down: an unhandled rejection would.
      log.error({ err: e, conf }, "reload failed; keeping the old config");
    });
  });

  await new Promise<void>((resolve) => signals.interrupt.addEventListener("abort", () => resolve(), { once: true }));
  log.info({ graceS: s.stopGrace }, "stopping: no new work; waiting for active runs");
  const errors: unknown[] = [];
  await triggers.stop().catch((e: unknown) => errors.push(e));
  const stopping = hub.stop(s.stopGrace * 1000).catch((e: unknown) => errors.push(e));
  await stopping;
  consoleLines.flush();
  await notifier.stop().catch((e: unknown) => errors.push(e));
  await app.close().catch((e: unknown) => errors.push(e));
  events.close();
  metrics.close();
  clusterClock.stop();
  await cluster?.close();
  for (const e of errors) log.error({ err: e }, "error while stopping");
  log.info("stopped");
  return errors.length ? 1 : 0;
}
