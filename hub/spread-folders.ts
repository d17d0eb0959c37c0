/**
 * Marks the folders that runs' folders are made in (a flow version's `pending/` and
 * `active/`, a flow's workspaces folder) with ext4's "top of directory hierarchy" attribute
 * (`chattr +T`), so that ext4 puts each new run folder, and the files made in it, in a block
 * group of its own choosing rather than its parent's.
 *
 * Why: on an ext4 without a journal, making an inode reads every inode of its block group
 * freed in the last minute or more (`recently_deleted()` in the kernel). A run makes about a
 * dozen inodes and retention frees as many; kept in one group, under load that became up to
 * two thirds of the host's main thread (README, Performance). Spread over the file system's
 * groups, few freed inodes are met. On a journalled ext4 the attribute only spreads folders;
 * where it is not supported `chattr` fails and nothing changes.
 */
import type { Logger } from "pino";
import type { HostCommands } from "../agent/contract.js";

export class FolderSpreader {
  private warned = false;

  constructor(
    private readonly commands: HostCommands,
    private readonly log: Logger,
  ) {}

  /** Marks `dirs`, which exist, in the background (the spawn helper runs `chattr`). */
  spread(dirs: readonly string[]): void {
    void this.commands.system("chattr", ["+T", "--", ...dirs]).then((r) => {
      if (r.status === 0 || this.warned) return;
      this.warned = true;
      this.log.debug({ status: r.status, error: r.error, output: r.output.slice(0, 3) }, "run folders not spread over the disk (chattr +T failed: not ext4, or no chattr)");
    });
  }
}
