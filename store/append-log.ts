/**
 * Append-only JSON-lines files (node status lines, output lines) with group commit: every
 * record appended while a write is in flight goes out in the next single write and
 * fdatasync, so thousands of lines cost a handful of syncs, and a line is never rewritten.
 * Read back tolerating a torn last line (a crash mid-write).
 */
import { closeSync, fstatSync, ftruncateSync, openSync } from "node:fs";
import { open, readFile, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { ensureDir, fileError, fsyncDir, syncFd, writeAllSync } from "./atomic-file.js";
import { fsyncEnabled } from "./durability.js";
import { errorCode } from "../flows/errors.js";

export interface AppendStats {
  /** write (and fdatasync) rounds; far fewer than records when batching works */
  batches: number;
  records: number;
  bytes: number;
  /** rounds that ended with an fdatasync (with fsync off: that would have) */
  syncs: number;
}

/** Totals over every AppendLog of this process (for the bench and /metrics). */
export const stats: AppendStats = { batches: 0, records: 0, bytes: 0, syncs: 0 };

export class AppendLog {
  /** This log's own counters. */
  readonly stats: AppendStats = { batches: 0, records: 0, bytes: 0, syncs: 0 };
  private queue: string[] = [];
  /** Whether a record in the queue asked to be synced (not every one does: see append). */
  private queueNeedsSync = false;
  /** Records appended so far, written to the file, and made durable: flush waits on the gap. */
  private appended = 0;
  private written = 0;
  private durable = 0;
  private waiters: { upTo: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private draining: Promise<void> | undefined;
  /** The open descriptor (sync calls but for the fdatasync: see atomic-file.ts). */
  private opened: Promise<{ fd: number; size: number }> | undefined;
  private closing: Promise<void> | undefined;
  /** Sticky: after a failed write the file's tail is uncertain, so nothing more is written. */
  private failure: Error | undefined;
  /** Set by ready({ syncDir: false }): a new file's folder is synced by the caller. */
  private callerSyncsDir = false;
  /**
   * A file made by its first write (a node's log, made when the node first prints): its
   * folder's entry is synced with the file's first fdatasync, side by side, instead of
   * before the first write. Nothing in it is promised durable before that sync anyway.
   */
  private dirOwed = false;
  /** Armed by a `syncWithinMs` record: the flush that keeps its promise, and when it is due. */
  private syncTimer: NodeJS.Timeout | undefined;
  private syncDue = 0;

  /** Opens lazily on the first write; use {@link AppendLog.open} to create the file now. */
  constructor(readonly path: string) {}

  /** Creates the file if missing and repairs a torn tail left by a crash. */
  static async open(path: string): Promise<AppendLog> {
    const log = new AppendLog(path);
    await log.handle();
    return log;
  }

  /**
   * Opens (creating) the file now rather than at the first write. `syncDir: false`: the
   * caller syncs the folder, with the other files it makes there, once for all of them.
   */
  async ready(o: { syncDir?: boolean } = {}): Promise<void> {
    if (o.syncDir === false && this.opened === undefined) this.callerSyncsDir = true;
    await this.handle();
  }

  private handle(byWrite = false): Promise<{ fd: number; size: number }> {
    this.opened ??= this.openFile(true, byWrite).catch((e: unknown) => Promise.reject(fileError(`can not open ${this.path}`, e)));
    return this.opened;
  }

  /** The single writer of its file: the size it tracks is where a failed batch is cut back to. */
  private async openFile(makeDir: boolean, byWrite: boolean): Promise<{ fd: number; size: number }> {
    // Most logs are new: try to create first; only an existing file can have a torn tail.
    let fd: number;
    let created = true;
    try {
      fd = openSync(this.path, "ax");
    } catch (e) {
      const code = errorCode(e);
      if (code === "ENOENT" && makeDir) {
        await ensureDir(dirname(this.path));
        return this.openFile(false, byWrite);
      }
      if (code !== "EEXIST") throw e;
      await repairTornTail(this.path);
      fd = openSync(this.path, "a");
      created = false;
    }
    try {
      // A new file's name must be durable too, or a crash can lose the whole log.
      if (created && !this.callerSyncsDir) {
        if (byWrite) this.dirOwed = true;
        else if (fsyncEnabled()) await fsyncDir(dirname(this.path));
      }
      // A file this call created is empty: no need to ask.
      return { fd, size: created ? 0 : fstatSync(fd).size };
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /**
   * Queues one record as a JSON line; it is written with the others of this tick, and
   * synced. `lazy`: written but not synced on its own account — it becomes durable with the
   * next synced record or flush. For a record that only matters while this process's
   * machine stays up (a process group id: a crash of the machine takes the processes too).
   * `syncWithinMs`: lazy, and synced at the latest that long after it was appended (output
   * lines: a chatty task costs one sync per interval, not one per batch of lines).
   */
  append(record: unknown, o: { lazy?: boolean; syncWithinMs?: number } = {}): void {
    if (this.closing !== undefined) throw new Error(`${this.path}: append after close`);
    let line: string | undefined;
    try {
      line = JSON.stringify(record) as string | undefined;
    } catch (e) {
      throw fileError(`${this.path}: record is not JSON`, e);
    }
    // JSON.stringify(undefined) is undefined, which would write the non-JSON line "undefined".
    if (line === undefined) throw new TypeError(`${this.path}: record is not JSON (${typeof record})`);
    if (this.failure !== undefined) return; // reported by flush() and close()
    this.queue.push(line + "\n");
    this.appended++;
    if (o.syncWithinMs !== undefined) this.syncWithin(o.syncWithinMs);
    else if (o.lazy !== true) this.queueNeedsSync = true;
    this.startDrain();
  }

  /**
   * Makes everything appended so far durable within `ms`: one timer, due at the earliest
   * deadline of the records not yet durable, serves them all; it is dropped once they are
   * durable by other means. A failure is sticky and reported by the next flush() or close().
   */
  private syncWithin(ms: number): void {
    const due = performance.now() + ms;
    if (this.syncTimer !== undefined && this.syncDue <= due) return;
    this.dropSyncTimer();
    this.syncDue = due;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.flush().catch(() => undefined);
    }, ms);
    // A process that is done otherwise need not wait: close() syncs what is left.
    this.syncTimer.unref();
  }

  private dropSyncTimer(): void {
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
  }

  private startDrain(): void {
    // setImmediate, not a microtask: a whole tick's appends, I/O callbacks included, share one write.
    this.draining ??= new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
  }

  /** Lazy records are written but not synced, and someone waits for them. */
  private syncOwed(): boolean {
    return this.waiters.length > 0 && this.durable < this.written;
  }

  private async drain(): Promise<void> {
    try {
      while ((this.queue.length > 0 || this.syncOwed()) && this.failure === undefined) {
        const count = this.queue.length;
        const sync = this.queueNeedsSync || this.waiters.length > 0;
        const buf = Buffer.from(this.queue.join(""), "utf8");
        this.queue = [];
        this.queueNeedsSync = false;
        try {
          await this.writeBatch(buf, sync);
        } catch (e) {
          await this.fail(e);
          break;
        }
        this.written += count;
        // An fdatasync covers every write made before it, lazy ones included.
        if (sync) this.durable = this.written;
        for (const s of [this.stats, stats]) {
          s.batches++;
          if (sync) s.syncs++;
          s.records += count;
          s.bytes += buf.length;
        }
        this.settle();
      }
    } finally {
      this.draining = undefined;
    }
  }

  private async writeBatch(buf: Buffer, sync: boolean): Promise<void> {
    const h = await this.handle(true);
    if (buf.length > 0) writeAllSync(h.fd, buf);
    if (sync && fsyncEnabled()) {
      if (this.dirOwed) await Promise.all([syncFd(h.fd, true), fsyncDir(dirname(this.path))]);
      else await syncFd(h.fd, true);
    }
    if (sync) this.dirOwed = false;
    h.size += buf.length;
  }

  private async fail(e: unknown): Promise<void> {
    this.failure = fileError(`can not append to ${this.path}`, e);
    this.queue = [];
    // Best effort: cut a partly written batch so the file ends on a whole line.
    const h = await this.opened?.catch(() => undefined);
    if (h !== undefined) {
      try {
        ftruncateSync(h.fd, h.size);
      } catch {
        // best effort
      }
    }
    this.settle();
  }

  private settle(): void {
    if (this.durable === this.appended) this.dropSyncTimer();
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.upTo <= this.durable) w.resolve();
      else if (this.failure !== undefined) w.reject(this.failure);
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Resolves when everything appended before the call is durable; rejects, naming the file, if it can not be. */
  flush(): Promise<void> {
    if (this.appended <= this.durable) return Promise.resolve();
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ upTo: this.appended, resolve, reject }));
    // Lazy records already written need a sync of their own.
    this.startDrain();
    return p;
  }

  /** Flushes and closes; idempotent. Rejects if records were lost (the file is closed anyway). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const errors: unknown[] = [];
      await this.flush().catch((e: unknown) => errors.push(e));
      this.dropSyncTimer();
      const h = await this.opened?.catch(() => undefined);
      if (h !== undefined) {
        try {
          closeSync(h.fd);
        } catch (e) {
          errors.push(fileError(`can not close ${this.path}`, e));
        }
      }
      if (errors.length > 0) throw errors[0];
    })();
    return this.closing;
  }
}

/** Index of the last "\n" before `end`, or -1; reads backwards so a big log is not read whole. */
async function lastNewline(fh: FileHandle, end: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  for (let stop = end; stop > 0; ) {
    const start = Math.max(0, stop - chunk.length);
    const { bytesRead } = await fh.read(chunk, 0, stop - start, start);
    const i = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (i >= 0) return start + i;
    stop = start;
  }
  return -1;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Cuts what {@link readJsonLines} would call torn (an unterminated last line, or a last line
 * that does not parse) so later appends start on a clean line. Returns whether it cut.
 */
export async function repairTornTail(path: string): Promise<boolean> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r+");
  } catch (e) {
    if (errorCode(e) === "ENOENT") return false;
    throw fileError(`can not repair ${path}`, e);
  }
  try {
    const size = (await fh.stat()).size;
    if (size === 0) return false;
    const nl = await lastNewline(fh, size);
    let keep = size;
    if (nl !== size - 1) keep = nl + 1;
    else {
      const prev = await lastNewline(fh, nl);
      const line = Buffer.alloc(nl - prev - 1);
      await fh.read(line, 0, line.length, prev + 1);
      if (line.length > 0 && !parses(line.toString("utf8"))) keep = prev + 1;
    }
    if (keep === size) return false;
    await fh.truncate(keep);
    if (fsyncEnabled()) await fh.datasync();
    return true;
  } catch (e) {
    throw fileError(`can not repair ${path}`, e);
  } finally {
    await fh.close();
  }
}

export interface JsonLines {
  records: unknown[];
  /** the last line was incomplete or did not parse (a crash mid-write); it is left out */
  torn: boolean;
  /** complete lines before the last that did not parse; left out */
  corrupt: number;
}

/** Reads a JSON-lines file back; a missing file reads as empty. */
export async function readJsonLines(path: string): Promise<JsonLines> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (errorCode(e) === "ENOENT") return { records: [], torn: false, corrupt: 0 };
    throw fileError(`can not read ${path}`, e);
  }
  const lines = text.split("\n");
  // An unterminated tail is torn even if it parses: "12" may be the start of "123".
  let torn = lines.pop() !== "";
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
