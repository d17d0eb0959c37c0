/**
 * Talking to a cluster under faults: every call has a timeout (a frozen host never answers)
 * and goes to a host that is believed live, trying the next one when a host does not answer
 * or answers 5xx. A 4xx is an answer and is returned as such.
 */
import type { Cluster } from "../helpers/cluster.js";
import type { FloeProcess } from "../helpers/floe-process.js";
import type { Rng } from "./prng.js";

export interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly host: string;
}

export class ChaosClient {
  /** Hosts not to be asked (frozen ones). */
  readonly avoid = new Set<string>();

  constructor(
    private readonly cluster: Cluster,
    private readonly rng: Rng,
  ) {}

  /** The hosts believed live, in a random order. */
  live(): [string, FloeProcess][] {
    const hosts = [...this.cluster.hosts].filter(([name]) => !this.avoid.has(name));
    for (let i = hosts.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng.next() * (i + 1));
      [hosts[i], hosts[j]] = [hosts[j] as [string, FloeProcess], hosts[i] as [string, FloeProcess]];
    }
    return hosts;
  }

  /** One request to one host; throws on no answer within `ms`. */
  static async once(p: FloeProcess, host: string, method: string, path: string, body?: unknown, ms = 5_000): Promise<Answer> {
    const res = await fetch(`${p.api}${path}`, {
      method,
      headers: { "x-floe-auth": p.token, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(ms),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed, host };
  }

  /**
   * A read (or an idempotent write) through any live host, until one answers below 500 or
   * `deadlineMs` passes (then the last answer or error).
   */
  async ask(method: string, path: string, body?: unknown, deadlineMs = 30_000): Promise<Answer> {
    const deadline = Date.now() + deadlineMs;
    let last: Answer | undefined;
    let err: unknown;
    for (;;) {
      for (const [name, p] of this.live()) {
        try {
          last = await ChaosClient.once(p, name, method, path, body);
          if (last.status < 500) return last;
        } catch (e) {
          err = e;
        }
        if (Date.now() > deadline) break;
      }
      if (Date.now() > deadline) {
        if (last !== undefined) return last;
        throw new Error(`${method} ${path}: no host answered in ${deadlineMs} ms (${String(err)})`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
