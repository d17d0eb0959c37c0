/**
 * What the Redis cluster state (store/redis-state.ts) makes of Redis's replies: its scripts'
 * arrays and flat hashes, the hosts' and pends' JSON, and which errors are the connection's
 * rather than the command's. Defensive throughout: a malformed entry is skipped, never
 * trusted.
 */
import type { HostRecord, PendRecord, SnapshotHost } from "./cluster-state.js";

/** Errors of the connection rather than of the command: the command may be retried. */
export function transportError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === "MaxRetriesPerRequestError") return true;
  return /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|LOADING|MaxRetriesPerRequest/.test(e.message);
}

export function reason(msg: string): string {
  if (msg.includes("Stream isn't writeable")) return "is not connected (reconnecting)";
  if (msg.includes("Command timed out")) return "did not answer in time";
  if (msg.includes("Connection is closed")) return "closed the connection";
  if (msg.includes("LOADING")) return "is loading its data";
  return `could not be reached (${msg})`;
}

export function asArray(r: unknown, what: string, min: number): unknown[] {
  if (!Array.isArray(r) || r.length < min) throw new Error(`cluster state: unexpected reply to ${what}`);
  return r;
}

export function asStrings(r: unknown, what: string): string[] {
  return asArray(r, what, 0).map((x) => (typeof x === "string" ? x : String(x)));
}

/** A flat [k, v, k, v…] reply (or an object, if the client maps it) as a Map. */
export function pairs(r: unknown): Map<string, string> {
  const m = new Map<string, string>();
  if (Array.isArray(r)) {
    for (let i = 0; i + 1 < r.length; i += 2) m.set(String(r[i]), String(r[i + 1]));
  } else if (r !== null && typeof r === "object") {
    for (const [k, v] of Object.entries(r)) m.set(k, String(v));
  }
  return m;
}

export function counts(r: unknown): Map<string, number> {
  const m = new Map<string, number>();
  for (const [k, v] of pairs(r)) {
    const n = Number(v);
    if (n > 0) m.set(k, n);
  }
  return m;
}

function strings(x: unknown): string[] | undefined {
  return Array.isArray(x) && x.every((s) => typeof s === "string") ? (x as string[]) : undefined;
}

function parseJson(json: string | undefined): Record<string, unknown> | undefined {
  if (json === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(json);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function parseHost(json: string): HostRecord | undefined {
  const o = parseJson(json);
  const tags = strings(o?.tags);
  if (o === undefined || typeof o.name !== "string" || tags === undefined) return undefined;
  if (typeof o.slots !== "number" || typeof o.running !== "number" || typeof o.lastSeen !== "number" || typeof o.startedAt !== "number") return undefined;
  return { name: o.name, tags, slots: o.slots, running: o.running, lastSeen: o.lastSeen, startedAt: o.startedAt, ...(typeof o.address === "string" ? { address: o.address } : {}) };
}

/**
 * Every live host's lease end as one time (the earliest), without a map of 500 entries made
 * per snapshot: a pass reads the ends of the few hosts it woke.
 */
export class SameEnd implements ReadonlyMap<string, number> {
  /** Names per list of live hosts: the cached host table is most snapshots' list. */
  private static readonly names = new WeakMap<readonly SnapshotHost[], ReadonlySet<string>>();
  constructor(
    private readonly hosts: readonly SnapshotHost[],
    private readonly end: number,
  ) {}
  private set(): ReadonlySet<string> {
    let names = SameEnd.names.get(this.hosts);
    if (names === undefined) SameEnd.names.set(this.hosts, (names = new Set(this.hosts.map((h) => h.name))));
    return names;
  }
  get size(): number {
    return this.hosts.length;
  }
  get(name: string): number | undefined {
    return this.set().has(name) ? this.end : undefined;
  }
  has(name: string): boolean {
    return this.set().has(name);
  }
  *entries(): MapIterator<[string, number]> {
    for (const h of this.hosts) yield [h.name, this.end];
  }
  *keys(): MapIterator<string> {
    for (const h of this.hosts) yield h.name;
  }
  *values(): MapIterator<number> {
    for (const _ of this.hosts) yield this.end;
  }
  [Symbol.iterator](): MapIterator<[string, number]> {
    return this.entries();
  }
  forEach(f: (value: number, key: string, map: ReadonlyMap<string, number>) => void): void {
    for (const h of this.hosts) f(this.end, h.name, this);
  }
}

/** Newline-separated JSON views, in order: parsed at once, or line by line past a bad one. */
export function parsePendViews(text: string): PendRecord[] {
  if (text === "") return [];
  let all: unknown;
  try {
    all = JSON.parse(`[${text.replaceAll("\n", ",")}]`);
  } catch {
    all = undefined;
  }
  const items: unknown[] = Array.isArray(all) ? all : text.split("\n").map((line) => parseJson(line));
  const out: PendRecord[] = [];
  for (const o of items) {
    const p = parsePendView(o !== null && typeof o === "object" && !Array.isArray(o) ? (o as Record<string, unknown>) : undefined);
    if (p !== undefined) out.push(p);
  }
  return out;
}

function parsePendView(o: Record<string, unknown> | undefined): PendRecord | undefined {
  const hostTags = strings(o?.hostTags);
  const resources = strings(o?.resources);
  if (o === undefined || hostTags === undefined || resources === undefined) return undefined;
  if (typeof o.run !== "string" || typeof o.flowKey !== "string" || typeof o.adoptedBy !== "string" || typeof o.adoptedAt !== "number") return undefined;
  return {
    run: o.run,
    flowKey: o.flowKey,
    hostTags,
    resources,
    ...(typeof o.concurrency === "number" ? { concurrency: o.concurrency } : {}),
    adoptedBy: o.adoptedBy,
    adoptedAt: o.adoptedAt,
    record: "",
  };
}
