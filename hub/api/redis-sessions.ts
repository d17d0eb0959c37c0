/**
 * Login sessions of a cluster, in Redis, so a token issued by one host works on every host.
 * As in FileSessionStore, only a SHA-256 of each token is stored; each session is one key
 * that Redis expires with it.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { ROLES, type Role } from "../../flows/model.js";
import type { RedisKeys } from "../../store/redis-keys.js";
import type { Session, SessionStore } from "./sessions.js";

const hashToken = (t: string): string => createHash("sha256").update(t).digest("hex");

export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlMs = 12 * 3600_000,
    private readonly now: () => number = Date.now,
  ) {}

  async create(user: string, role: Role): Promise<{ token: string; session: Session }> {
    const token = randomBytes(32).toString("base64url");
    const session: Session = { user, role, expires: this.now() + this.ttlMs };
    await this.redis.set(this.keys.session(hashToken(token)), JSON.stringify(session), "PX", Math.max(1, Math.ceil(this.ttlMs)));
    return { token, session };
  }

  async get(token: string): Promise<Session | undefined> {
    const json = await this.redis.get(this.keys.session(hashToken(token)));
    if (json === null) return undefined;
    const s = parseSession(json);
    if (s === undefined || s.expires <= this.now()) return undefined;
    return s;
  }

  async delete(token: string): Promise<void> {
    await this.redis.del(this.keys.session(hashToken(token)));
  }
}

function parseSession(json: string): Session | undefined {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object") return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.user !== "string" || typeof o.role !== "string" || !(ROLES as readonly string[]).includes(o.role) || typeof o.expires !== "number") return undefined;
  return { user: o.user, role: o.role as Role, expires: o.expires };
}
