/**
 * Login sessions: random tokens with an expiry, kept in a file under the host's root so a
 * restart keeps people logged in. Only a SHA-256 of each token is stored, so the file
 * holds nothing that could be replayed.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { Role } from "../../flows/model.js";
import { readJsonFile, writeFileAtomic } from "../../store/atomic-file.js";

export interface Session {
  readonly user: string;
  readonly role: Role;
  readonly expires: number;
}

export interface SessionStore {
  create(user: string, role: Role): Promise<{ token: string; session: Session }>;
  get(token: string): Promise<Session | undefined>;
  delete(token: string): Promise<void>;
}

const hashToken = (t: string): string => createHash("sha256").update(t).digest("hex");

export class FileSessionStore implements SessionStore {
  private sessions = new Map<string, Session>();
  private loaded = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly ttlMs = 12 * 3600_000,
    private readonly now: () => number = Date.now,
  ) {}

  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    try {
      const data = await readJsonFile(this.path);
      if (data !== null && typeof data === "object" && !Array.isArray(data)) {
        for (const [k, v] of Object.entries(data as Record<string, Session>)) {
          if (typeof v?.user === "string" && typeof v.expires === "number" && v.expires > this.now()) this.sessions.set(k, v);
        }
      }
    } catch {
      // A corrupt session file only logs people out; it must not stop the host.
    }
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify(Object.fromEntries(this.sessions));
    this.writing = this.writing.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFileAtomic(this.path, snapshot);
    });
    return this.writing;
  }

  async create(user: string, role: Role): Promise<{ token: string; session: Session }> {
    await this.load();
    const token = randomBytes(32).toString("base64url");
    const session = { user, role, expires: this.now() + this.ttlMs };
    for (const [k, s] of this.sessions) if (s.expires <= this.now()) this.sessions.delete(k);
    this.sessions.set(hashToken(token), session);
    await this.save();
    return { token, session };
  }

  async get(token: string): Promise<Session | undefined> {
    await this.load();
    const s = this.sessions.get(hashToken(token));
    if (s === undefined) return undefined;
    if (s.expires <= this.now()) {
      this.sessions.delete(hashToken(token));
      return undefined;
    }
    return s;
  }

  async delete(token: string): Promise<void> {
    await this.load();
    if (this.sessions.delete(hashToken(token))) await this.save();
  }
}
