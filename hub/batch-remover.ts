/**
 * Removes the directories of pruned runs in batches, each batch with one `rm -rf` spawned
 * by the spawn helper (agent/spawner.ts). Removing a run from the host itself is about
 * thirty fs calls (an lstat, unlink or rmdir per entry of its directory and workspace),
 * each a round trip through libuv's thread pool woken from and back to the host's event
 * loop: measured with strace, a quarter of a run's fs calls. A batch costs the host one
 * message. Retention itself is immediate (the run leaves the index at once); only the
 * files go a moment later. Left on disk by a crash, they are pruned again after restart.
 */
import { rm } from "node:fs/promises";
import type { Logger } from "pino";
import type { HostCommands } from "../agent/contract.js";

/** Directories per `rm` process: far below any argument-length limit. */
const BATCH = 64;
/** How long a smaller batch waits for more. */
const DELAY_MS = 500;

export class BatchRemover {
  private paths: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly commands: HostCommands,
    private readonly log: Logger,
  ) {}

  /** Queues a directory (absolute, under floe's root) for removal. */
  add(path: string): void {
    this.paths.push(path);
    if (this.paths.length >= BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), DELAY_MS);
  }

  /** Removes what is queued; resolves when every batch so far is gone. */
  flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const paths = this.paths;
    this.paths = [];
    if (paths.length > 0) this.running = this.running.then(() => this.remove(paths));
    return this.running;
  }

  private async remove(paths: readonly string[]): Promise<void> {
    const r = await this.commands.system("rm", ["-rf", "--", ...paths]);
    if (r.status === 0) return;
    // No rm, or some entry it could not remove: the host does it itself, and says so.
    this.log.warn({ status: r.status, error: r.error, output: r.output.slice(0, 5) }, "removing pruned runs with rm failed; removing them from the host");
    await Promise.all(paths.map((p) => rm(p, { recursive: true, force: true }).catch((e: unknown) => this.log.error({ err: e, path: p }, "can not remove a pruned run"))));
  }
}
