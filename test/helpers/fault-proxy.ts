/**
 * A TCP proxy that fails a link the way networks do, in the spirit of Toxiproxy (this
 * kernel has no netem): every connection to it is relayed to `target`, and the link can be
 * - cut: connections stay open, bytes in both directions are held, and delivered in
 *   order when the link heals (what a partition does to TCP);
 * - slowed: each chunk from the target (the replies) is held `ms` before it is passed on;
 * - cut one way: what the client sends reaches the target, the replies are held;
 * - lossy: each chunk, both ways, is held a latency with jitter, and a share of them an
 *   extra retransmission delay — what packet loss looks like from above TCP (bytes are
 *   never dropped or reordered: TCP would not let them be);
 * - healed: back to a plain relay, delivering whatever was held.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

type Mode =
  | { readonly kind: "pass" }
  | { readonly kind: "cut" }
  | { readonly kind: "cut-replies" }
  | { readonly kind: "slow"; readonly replyDelayMs: number }
  | { readonly kind: "lossy"; readonly latencyMs: number; readonly jitterMs: number; readonly loss: number; readonly random: () => number };

export interface FaultProxy {
  readonly port: number;
  readonly url: (scheme: string) => string;
  cut(): void;
  /**
   * Cuts the link the moment a client sends bytes containing `marker` (that chunk is the
   * first held): a cut at an exact point of a protocol, e.g. just before one script runs.
   */
  cutWhenSent(marker: string): void;
  /** A one-way cut: requests get through, replies are held. */
  cutReplies(): void;
  slowReplies(ms: number): void;
  /** Every chunk held `latencyMs` ± `jitterMs`; a share `loss` of them 200–600 ms more. */
  lossy(latencyMs: number, jitterMs: number, loss: number, random?: () => number): void;
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
    /** Whether this pipe carries the target's replies (held by a one-way cut). */
    private readonly replies: boolean,
  ) {}

  private held(): boolean {
    const m = this.mode();
    return m.kind === "cut" || (m.kind === "cut-replies" && this.replies);
  }

  push(data: Buffer, delayMs: number): void {
    // Never before the chunk ahead of it: a byte stream keeps its order.
    const last = this.queue[this.queue.length - 1];
    this.queue.push({ at: Math.max(Date.now() + delayMs, last?.at ?? 0), data });
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
    while (this.queue.length > 0 && !this.held()) {
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
  let cutMarker: Buffer | undefined;
  const delay = (reply: boolean): number => {
    if (mode.kind === "slow") return reply ? mode.replyDelayMs : 0;
    if (mode.kind !== "lossy") return 0;
    const r = mode.random;
    const base = mode.latencyMs + (r() * 2 - 1) * mode.jitterMs;
    return Math.max(0, base + (r() < mode.loss ? 200 + r() * 400 : 0));
  };
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
    const up = new Pipe(upstream, () => mode, false);
    const down = new Pipe(client, () => mode, true);
    pipes.add(up);
    pipes.add(down);
    client.on("close", () => {
      pipes.delete(up);
      pipes.delete(down);
    });
    client.on("data", (d: Buffer) => {
      if (cutMarker !== undefined && d.includes(cutMarker)) {
        cutMarker = undefined;
        mode = { kind: "cut" };
      }
      up.push(d, delay(false));
    });
    upstream.on("data", (d: Buffer) => down.push(d, delay(true)));
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
    cutWhenSent(marker) {
      cutMarker = Buffer.from(marker);
    },
    cutReplies() {
      mode = { kind: "cut-replies" };
      pumpAll();
    },
    slowReplies(ms) {
      mode = { kind: "slow", replyDelayMs: ms };
      pumpAll();
    },
    lossy(latencyMs, jitterMs, loss, random = Math.random) {
      mode = { kind: "lossy", latencyMs, jitterMs, loss, random };
      pumpAll();
    },
    heal() {
      mode = { kind: "pass" };
      cutMarker = undefined;
      for (const p of pipes) p.release();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
