/**
 * Real brokers for integration tests: a nats-server (JetStream on, its own store dir) and a
 * redis-server (append-only, its own dir), each on a free port, killed by PID in teardown.
 * `restart()` keeps the port and the data, as a broker restart in production would.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { join } from "node:path";

export interface Broker {
  readonly port: number;
  readonly url: string;
  readonly output: () => string;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
  /** Starts again on the same port with the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Sends a signal to the running server (SIGSTOP / SIGCONT: a broker that hangs). */
  signal(sig: NodeJS.Signals): void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: "127.0.0.1" });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

function startBroker(name: string, port: number, argv: () => [string, string[]], url: string): Promise<Broker> {
  let child: ChildProcess | undefined;
  let out = "";
  const launch = async () => {
    const [cmd, args] = argv();
    const c = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    c.stdout?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    c.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    let exited = false;
    c.once("exit", () => (exited = true));
    await waitFor(async () => {
      if (exited) throw new Error(`${name} exited at start:\n${out}`);
      return portOpen(port);
    }, 20_000, `${name} on port ${port}`);
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGKILL");
    await gone;
  };
  return launch().then(() => ({
    port,
    url,
    output: () => out,
    kill,
    async restart() {
      await kill();
      await launch();
    },
    stop: kill,
    signal(sig: NodeJS.Signals) {
      child?.kill(sig);
    },
  }));
}

/** nats-server with JetStream (unless `jetstream: false`), storing under `dir`. */
export async function startNats(dir: string, o: { jetstream?: boolean } = {}): Promise<Broker> {
  const port = await freePort();
  const store = join(dir, "nats");
  mkdirSync(store, { recursive: true });
  const js = o.jetstream === false ? [] : ["-js", "-sd", store];
  return startBroker("nats-server", port, () => ["nats-server", ["-a", "127.0.0.1", "-p", String(port), ...js]], `nats://127.0.0.1:${port}`);
}

/**
 * `n` nats-servers joined in one NATS cluster (routes between all of them), each with
 * JetStream storing under its own dir: a stream with replicas n survives the loss of a minority.
 */
export async function startNatsCluster(dir: string, n = 3): Promise<Broker[]> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  return Promise.all(
    ports.map((port, i) => {
      const store = join(dir, `nats-${i + 1}`);
      mkdirSync(store, { recursive: true });
      const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store, "-n", `n${i + 1}`, "--cluster_name", "floe-test", "--cluster", `nats://127.0.0.1:${routePorts[i]}`, "--routes", routes];
      return startBroker(`nats-server n${i + 1}`, port, () => ["nats-server", args], `nats://127.0.0.1:${port}`);
    }),
  );
}

/** redis-server, append-only, storing under `dir`; eviction off (floe refuses eviction). */
export async function startRedis(dir: string, extra: string[] = []): Promise<Broker> {
  const port = await freePort();
  const data = join(dir, "redis");
  mkdirSync(data, { recursive: true });
  return startBroker(
    "redis-server",
    port,
    () => ["redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", data, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction", ...extra]],
    `redis://127.0.0.1:${port}`,
  );
}

/** A Redis Sentinel monitoring the primary at `primaryPort` as `master`, with quorum 1 (or `quorum`) and short timeouts. */
export async function startSentinel(dir: string, primaryPort: number, master = "floe-primary", quorum = 1): Promise<Broker> {
  const port = await freePort();
  const conf = join(dir, `sentinel-${port}.conf`);
  mkdirSync(dir, { recursive: true });
  // Sentinel rewrites its config file: it must be its own and writable.
  writeFileSync(conf, [`port ${port}`, "bind 127.0.0.1", `dir ${dir}`, `sentinel monitor ${master} 127.0.0.1 ${primaryPort} ${quorum}`, `sentinel down-after-milliseconds ${master} 1000`, `sentinel failover-timeout ${master} 5000`, ""].join("\n"));
  return startBroker("redis-sentinel", port, () => ["redis-server", [conf, "--sentinel"]], `redis+sentinel://127.0.0.1:${port}/${master}`);
}
