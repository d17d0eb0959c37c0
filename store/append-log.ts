/**
 * Append-only JSON-lines files (node status lines, output lines) with group commit: every
 * record appended while a write is in flight goes out in the next single write and
 * fdatasync, so thousands of lines cost a handful of syncs, and a line is never rewritten.
 * Read back tolerating a torn last line (a crash mid-write).
 */
import { open, readFile, truncate, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { mkdirSync } from "node:fs";
import { fsyncEnabled } from "./durability.js";

export const stats = { batches: 0 };

export class AppendLog {
  private queue: string[] = [];
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private writing: Promise<void> | undefined;
  private fh: Promise<FileHandle> | undefined;
  private closed: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(readonly path: string) {}

  private handle(): Promise<FileHandle> {
    this.fh ??= (async () => {
      mkdirSync(dirname(this.path), { recursive: true });
      await repairTornTail(this.path);
      return open(this.path, "a");
    })();
    return this.fh;
  }

  append(record: unknown): void {
    if (this.closed !== undefined) throw new Error(`${this.path}: append after close`);
    this.queue.push(JSON.stringify(record) + "\n");
    this.schedule();
  }

  private schedule(): void {
    if (this.writing !== undefined) return;
    this.writing = new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.join("");
        const waiters = this.waiters;
        this.queue = [];
        this.waiters = [];
        try {
          const fh = await this.handle();
          await fh.write(batch);
          if (fsyncEnabled()) await fh.datasync();
          stats.batches++;
          for (const w of waiters) w.resolve();
        } catch (e) {
          this.failure = new Error(`can not append to ${this.path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
          for (const w of waiters) w.reject(this.failure);
        }
      }
    } finally {
      this.writing = undefined;
      for (const w of this.waiters.splice(0)) w.resolve();
    }
  }

  /** Resolves when everything appended before the call is on disk. */
  flush(): Promise<void> {
    if (this.queue.length === 0 && this.writing === undefined) return this.failure ? Promise.reject(this.failure) : Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.flush().catch(() => undefined);
      if (this.fh !== undefined) await (await this.fh).close();
    })();
    return this.closed;
  }
}

/** Cuts an incomplete last line, so later appends start on a clean line. */
export async function repairTornTail(path: string): Promise<void> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (buf.length === 0 || buf[buf.length - 1] === 0x0a) return;
  const lastNl = buf.lastIndexOf(0x0a);
  await truncate(path, lastNl + 1);
}

export async function readJsonLines(path: string): Promise<{ records: unknown[]; torn: boolean; corrupt: number }> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { records: [], torn: false, corrupt: 0 };
    throw e;
  }
  const lines = text.split("\n");
  const last = lines.pop() ?? "";
  let torn = last !== "";
  let corrupt = 0;
  const records: unknown[] = [];
  for (const [i, l] of lines.entries()) {
    if (l === "") continue;
    try {
      records.push(JSON.parse(l));
    } catch {
      if (i === lines.length - 1 && !torn) torn = true;
      else corrupt++;
    }
  }
  return { records, torn, corrupt };
}
