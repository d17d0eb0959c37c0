/**
 * A content-addressed store of files on this host: `<root>/objects/<2 hex>/<2 hex>/<sha256>`.
 * An object is written once, however many runs make the same bytes: copied into a temporary
 * file next to its place while it is hashed, fsynced, renamed to its hash, and its folder
 * fsynced; so a crash leaves either nothing or the whole object. Stored objects are never
 * changed (read-only files); `sweep` removes the ones nobody references any more.
 */
import { createHash } from "node:crypto";
import { constants, mkdirSync, type Stats } from "node:fs";
import { chmod, lstat, open, readdir, rename, rmdir, stat, unlink, utimes } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsyncDir, syncFd, syncNewDirs } from "./atomic-file.js";
import { fsyncEnabled } from "./durability.js";

const SHA256 = /^[0-9a-f]{64}$/;
/** Temporary files of this store: `.<pid>.<counter>.part` next to where the object goes. */
const TEMP = /^\..*\.part$/;

export function isSha256(s: string): boolean {
  return SHA256.test(s);
}

/** A stored object: its hash (its name) and size. */
export interface StoredObject {
  readonly sha256: string;
  readonly size: number;
}

export interface SweepResult {
  /** Objects removed. */
  readonly removed: number;
  /** Bytes freed. */
  readonly bytes: number;
  /** Unreferenced objects kept because they are younger than the grace period. */
  readonly young: number;
}

let counter = 0;

export class ObjectStore {
  readonly dir: string;
  /** Serialises the last step of a put (rename or touch) with the sweep's last look and removal. */
  private lock: Promise<unknown> = Promise.resolve();

  constructor(root: string) {
    this.dir = join(root, "objects");
  }

  /** Where the object with this hash is (or would be). */
  pathOf(sha256: string): string {
    if (!isSha256(sha256)) throw new Error(`"${sha256}" is not a SHA-256 hex digest`);
    return join(this.dir, sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  }

  async has(sha256: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(sha256))).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Stores a copy of the file at `src` (read once: copied and hashed together), durably.
   * When the store has the object already, its copy is dropped and the object's time is
   * renewed: it counts as young again for the sweep's grace period.
   * `expect`: the hash the bytes must have (a download), refused when they do not.
   */
  async putFile(src: string, expect?: string): Promise<StoredObject> {
    const tmpDir = join(this.dir, "tmp");
    mkdirSync(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `.${process.pid}.${++counter}.part`);
    const hash = createHash("sha256");
    let size = 0;
    // Never through a link: what is stored is the file at that name, or nothing.
    const input = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW);
    const fh = await open(tmp, "wx", 0o600).catch(async (e: unknown) => {
      await input.close();
      throw e;
    });
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        size += bytesRead;
        for (let off = 0; off < bytesRead; ) off += (await fh.write(buf, off, bytesRead - off)).bytesWritten;
      }
      if (fsyncEnabled()) await syncFd(fh.fd);
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw e;
    } finally {
      await input.close().catch(() => undefined);
    }
    await fh.close();
    const sha256 = hash.digest("hex");
    if (expect !== undefined && expect !== sha256) {
      await unlink(tmp).catch(() => undefined);
      throw new Error(`the bytes of object ${expect} hash to ${sha256}: refused`);
    }
    await this.place(tmp, sha256);
    return { sha256, size };
  }

  /** Moves a complete, synced temporary file to its object's place, or drops it for the one there. */
  private async place(tmp: string, sha256: string): Promise<void> {
    const path = this.pathOf(sha256);
    const dir = dirname(path);
    const created = mkdirSync(dir, { recursive: true });
    await this.exclusive(async () => {
      const now = new Date();
      try {
        await utimes(path, now, now);
        await unlink(tmp).catch(() => undefined);
        return;
      } catch {
        // not there yet
      }
      await chmod(tmp, 0o444);
      await rename(tmp, path);
    });
    if (fsyncEnabled()) {
      await syncNewDirs(dir, created);
      await fsyncDir(dir);
    }
  }

  /**
   * Removes objects that are not in `keep` and are older than `graceMs` (by their time,
   * renewed by every put of the same bytes), and temporary files of dead writers. Each
   * removal looks at the object again under the lock that puts take, so a put that renews
   * an object while the sweep runs keeps it.
   */
  async sweep(keep: ReadonlySet<string>, graceMs: number): Promise<SweepResult> {
    let removed = 0;
    let bytes = 0;
    let young = 0;
    const cutoff = Date.now() - graceMs;
    for (const a of await list(this.dir)) {
      if (a === "tmp") {
        await this.sweepTemps(join(this.dir, a), cutoff);
        continue;
      }
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of await list(join(this.dir, a))) {
        const sub = join(this.dir, a, b);
        for (const name of await list(sub)) {
          if (!isSha256(name) || keep.has(name)) continue;
          const path = join(sub, name);
          const gone = await this.exclusive(async () => {
            const st = await lstat(path).catch(() => undefined);
            if (st === undefined) return undefined;
            if (st.mtimeMs > cutoff) {
              young++;
              return undefined;
            }
            await unlink(path);
            return st;
          });
          if (gone !== undefined) {
            removed++;
            bytes += gone.size;
          }
        }
        await rmdir(sub).catch(() => undefined); // only when empty
      }
      await rmdir(join(this.dir, a)).catch(() => undefined);
    }
    return { removed, bytes, young };
  }

  /** Total bytes of the objects stored (tests, metrics). */
  async usage(): Promise<number> {
    let total = 0;
    for (const a of await list(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of await list(join(this.dir, a))) {
        for (const name of await list(join(this.dir, a, b))) {
          if (!isSha256(name)) continue;
          const st: Stats | undefined = await stat(join(this.dir, a, b, name)).catch(() => undefined);
          total += st?.size ?? 0;
        }
      }
    }
    return total;
  }

  private async sweepTemps(dir: string, cutoff: number): Promise<void> {
    for (const name of await list(dir)) {
      if (!TEMP.test(name)) continue;
      // This process's own temporaries are in use (a put in progress); others' are left by a crash.
      if (name.startsWith(`.${process.pid}.`)) continue;
      const st = await lstat(join(dir, name)).catch(() => undefined);
      if (st !== undefined && st.mtimeMs <= cutoff) await unlink(join(dir, name)).catch(() => undefined);
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.lock.then(fn, fn);
    this.lock = next.catch(() => undefined);
    return next;
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
