/**
 * A TCP proxy that fails a link the way networks do, in the spirit of Toxiproxy (this
 * kernel has no netem): every connection to it is relayed to `target`, and the link can be
 * - cut: connections stay open, bytes in both directions are held, and delivered in
 *   order when the link heals (what a partition does to TCP);
 * - slowed: each chunk from the target (the replies) is held `ms` before it is passed on;
 * - healed: back to a plain relay, delivering whatever was held.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

type Mode = { readonly kind: "pass" } | { readonly kind: "cut" } | { readonly kind: "slow"; readonly replyDelayMs: number };

export interface FaultProxy {
  readonly port: number;
  readonly url: (scheme: string) => string;
  cut(): void;
  slowReplies(ms: number): void;
  heal(): void;
  close(): Promise<void>;
}

/** One direction of one connection: chunks with the time they may go, sent in order. */
class Pipe {
  private readonly queue: { at: number; data: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly to: Socket,
    private readonly mode: () => Mode,
  ) {}

  push(data: Buffer, delayMs: number): void {
    this.queue.push({ at: Date.now() + delayMs, data });
    this.pump();
  }

  /** Everything held goes as soon as the link lets it. */
  release(): void {
    for (const c of this.queue) c.at = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pump();
  }

  pump(): void {
    if (this.timer !== undefined) return;
    while (this.queue.length > 0 && this.mode().kind !== "cut") {
      const head = this.queue[0] as { at: number; data: Buffer };
      const wait = head.at - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.queue.shift();
      if (!this.to.destroyed) this.to.write(head.data);
    }
  }
}

export async function startFaultProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<FaultProxy> {
  let mode: Mode = { kind: "pass" };
  const pipes = new Set<Pipe>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: targetHost });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    const up = new Pipe(upstream, () => mode);
    const down = new Pipe(client, () => mode);
    pipes.add(up);
    pipes.add(down);
    client.on("close", () => {
      pipes.delete(up);
      pipes.delete(down);
    });
    client.on("data", (d: Buffer) => up.push(d, 0));
    upstream.on("data", (d: Buffer) => down.push(d, mode.kind === "slow" ? mode.replyDelayMs : 0));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  const pumpAll = (): void => {
    for (const p of pipes) p.pump();
  };
  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    cut() {
      mode = { kind: "cut" };
    },
    slowReplies(ms) {
      mode = { kind: "slow", replyDelayMs: ms };
      pumpAll();
    },
    heal() {
      mode = { kind: "pass" };
      for (const p of pipes) p.release();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
