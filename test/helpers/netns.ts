/**
 * A private network for a test: every member (a broker, a host) in a Linux network namespace
 * of its own, joined by a veth pair to a bridge in a switch namespace, with an address the
 * test assigns from 10.199.N.0/24 (N random); the test process itself reaches them through
 * one more veth pair in its own namespace. Faults are the kernel's:
 * - `cut(member)` takes the member's port on the switch down: every packet to and from it
 *   is lost, connections stay open (a pulled cable);
 * - `blackhole(from, to)` drops what `from` sends to `to` (a route to nowhere): with it on
 *   both sides, a partition of that pair only; on one side, a one-way cut. TCP holds the
 *   bytes and delivers them on healing, as a partition does.
 * Needs root (namespaces, veth pairs, a bridge); `available()` says whether it can run here.
 * Everything is removed by `close()` (deleting a namespace deletes its links).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { promisify } from "node:util";

const run = promisify(execFile);

async function ip(...args: string[]): Promise<void> {
  await run("ip", args);
}

/** Whether this process may create network namespaces (root, with iproute2). */
export async function netnsAvailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "needs root: run as root (sudo npm test), namespaces and veth pairs need CAP_NET_ADMIN";
  const probe = `flprobe${process.pid}`;
  try {
    await ip("netns", "add", probe);
    await ip("netns", "del", probe);
    return undefined;
  } catch (e) {
    return `cannot create a network namespace here (${(e as Error).message.split("\n")[0]}); needs root and iproute2`;
  }
}

export interface Member {
  readonly name: string;
  readonly ns: string;
  readonly addr: string;
  /** Starts `cmd` inside the member's namespace. */
  spawn(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess;
}

export interface TestNet {
  /** The test process's own address on the network. */
  readonly self: string;
  add(name: string): Promise<Member>;
  member(name: string): Member;
  cut(name: string): Promise<void>;
  uncut(name: string): Promise<void>;
  blackhole(from: string, to: string): Promise<void>;
  unblackhole(from: string, to: string): Promise<void>;
  close(): Promise<void>;
}

export async function createNet(): Promise<TestNet> {
  const id = `${process.pid % 10000}${Math.floor(Math.random() * 36 ** 2).toString(36)}`;
  const subnet = `10.199.${1 + Math.floor(Math.random() * 250)}`;
  const sw = `fl${id}sw`;
  const members = new Map<string, Member & { readonly port: string }>();
  let next = 10;
  await ip("netns", "add", sw);
  const nets = [sw];
  const cleanup = async () => {
    for (const ns of nets.reverse()) await ip("netns", "del", ns).catch(() => undefined);
    await ip("link", "del", `r${id}`).catch(() => undefined);
  };
  try {
    await ip("-n", sw, "link", "set", "lo", "up");
    await ip("-n", sw, "link", "add", "br0", "type", "bridge");
    await ip("-n", sw, "link", "set", "br0", "up");
    // The test process's own way in: a veth from the root namespace to the switch.
    await ip("link", "add", `r${id}`, "type", "veth", "peer", "name", `p${id}r`, "netns", sw);
    await ip("addr", "add", `${subnet}.1/24`, "dev", `r${id}`);
    await ip("link", "set", `r${id}`, "up");
    await ip("-n", sw, "link", "set", `p${id}r`, "master", "br0");
    await ip("-n", sw, "link", "set", `p${id}r`, "up");
  } catch (e) {
    await cleanup();
    throw e;
  }
  const portOf = (name: string): string => {
    const m = members.get(name);
    if (m === undefined) throw new Error(`no member ${name}`);
    return m.port;
  };
  const net: TestNet = {
    self: `${subnet}.1`,
    async add(name) {
      const i = next++;
      const ns = `fl${id}${name}`.slice(0, 30);
      const port = `p${id}${i}`;
      const dev = `v${id}${i}`;
      await ip("netns", "add", ns);
      nets.push(ns);
      await ip("-n", ns, "link", "set", "lo", "up");
      await ip("link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port, "netns", sw);
      await ip("-n", ns, "addr", "add", `${subnet}.${i}/24`, "dev", dev);
      await ip("-n", ns, "link", "set", dev, "up");
      await ip("-n", sw, "link", "set", port, "master", "br0");
      await ip("-n", sw, "link", "set", port, "up");
      const m = {
        name,
        ns,
        addr: `${subnet}.${i}`,
        port,
        spawn: (cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv) =>
          // `ip netns exec` execs the command: the child's pid is the program's own.
          spawn("ip", ["netns", "exec", ns, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env }),
      };
      members.set(name, m);
      return m;
    },
    member(name) {
      const m = members.get(name);
      if (m === undefined) throw new Error(`no member ${name}`);
      return m;
    },
    async cut(name) {
      await ip("-n", sw, "link", "set", portOf(name), "down");
    },
    async uncut(name) {
      await ip("-n", sw, "link", "set", portOf(name), "up");
    },
    async blackhole(from, to) {
      await ip("-n", net.member(from).ns, "route", "add", "blackhole", `${net.member(to).addr}/32`);
    },
    async unblackhole(from, to) {
      await ip("-n", net.member(from).ns, "route", "del", "blackhole", `${net.member(to).addr}/32`);
    },
    close: cleanup,
  };
  return net;
}

/** Waits until `addr:port` accepts a connection from the test process. */
export async function waitForPort(addr: string, port: number, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: addr, port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${addr}:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
