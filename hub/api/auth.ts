/**
 * Who is calling, and what they may do. A token comes in `X-Floe-Auth`, `Authorization:
 * Bearer`, or the `floe-sesh` cookie; the host's admin token is always an admin. Roles:
 * viewer reads, operator also starts, cancels and fills forms, admin does everything.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Role } from "../../flows/model.js";
import { FloeError } from "../errors.js";
import type { SessionStore } from "./sessions.js";

export interface Caller {
  readonly user: string;
  readonly role: Role;
}

export const COOKIE = "floe-sesh";

const RANK: Readonly<Record<Role, number>> = { viewer: 0, operator: 1, admin: 2 };

export function allows(caller: Caller, need: Role): boolean {
  return RANK[caller.role] >= RANK[need];
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    try {
      out.set(part.slice(0, eq).trim(), decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // a malformed cookie is ignored, like a missing one
    }
  }
  return out;
}

export function tokenFrom(headers: Record<string, string | string[] | undefined>): string | undefined {
  const h = headers["x-floe-auth"];
  if (typeof h === "string" && h !== "") return h;
  const a = headers["authorization"];
  if (typeof a === "string" && a.startsWith("Bearer ")) return a.slice(7).trim();
  const c = parseCookies(typeof headers["cookie"] === "string" ? headers["cookie"] : undefined).get(COOKIE);
  return c === "" ? undefined : c;
}

function sameSecret(a: string, b: string): boolean {
  // Hash first so the comparison is constant-time whatever the lengths.
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

export class Authenticator {
  constructor(
    private readonly adminToken: string,
    private readonly sessions: SessionStore,
  ) {}

  async caller(headers: Record<string, string | string[] | undefined>): Promise<Caller> {
    const token = tokenFrom(headers);
    if (token === undefined) throw new FloeError("E_UNAUTHORIZED", "missing credentials: log in, or send X-Floe-Auth or Authorization: Bearer");
    if (this.adminToken !== "" && sameSecret(token, this.adminToken)) return { user: "admin", role: "admin" };
    const s = await this.sessions.get(token);
    if (s === undefined) throw new FloeError("E_UNAUTHORIZED", "invalid or expired session");
    return { user: s.user, role: s.role };
  }
}

/** Failed logins per key (user + address): at most `max` within `windowMs`. */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  constructor(
    private readonly max = 10,
    private readonly windowMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 10_000,
  ) {}

  check(key: string): void {
    const recent = (this.failures.get(key) ?? []).filter((t) => t > this.now() - this.windowMs);
    this.failures.set(key, recent);
    if (recent.length >= this.max) throw new FloeError("E_RATE_LIMITED", "too many failed logins; try again in a few minutes");
  }

  fail(key: string): void {
    const list = this.failures.get(key) ?? [];
    list.push(this.now());
    // Re-inserted so the map stays ordered by latest failure: eviction takes the stalest keys.
    this.failures.delete(key);
    this.failures.set(key, list);
    if (this.failures.size > this.maxKeys) this.evict();
  }

  /**
   * Bounded memory under a spray of names: forget keys whose failures are all past the
   * window, then the least recently failed — never every key at once, which would let a
   * spray of made-up names reset the count of the name being guessed.
   */
  private evict(): void {
    const cutoff = this.now() - this.windowMs;
    for (const [key, list] of this.failures) if (list.every((t) => t <= cutoff)) this.failures.delete(key);
    for (const key of this.failures.keys()) {
      if (this.failures.size <= this.maxKeys * 0.9) break;
      this.failures.delete(key);
    }
  }

  succeed(key: string): void {
    this.failures.delete(key);
  }
}
