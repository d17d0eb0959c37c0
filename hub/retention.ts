/**
 * Retention: at most `retention.runs` archived runs per flow version are kept, none older
 * than `retention.max-age`; older ones leave the table at once and their folders and
 * workspaces are removed in batches (batch-remover.ts), and the artifacts no kept run
 * references are swept (artifact-sweep.ts).
 */
import type { Config } from "../flows/model.js";
import type { RunFiles } from "../store/run-files.js";
import type { BatchRemover } from "./batch-remover.js";
import type { RunFolders } from "./run-folders.js";
import type { RunTable } from "./run-table.js";
import { now } from "../store/clock.js";

export class Retention {
  constructor(
    private readonly table: RunTable,
    private readonly files: RunFiles,
    private readonly folders: RunFolders,
    private readonly remover: BatchRemover,
    private readonly config: () => Config,
    /** Runs were dropped: the artifacts only they referenced may go (artifact-sweep.ts). */
    private readonly pruned: () => void = () => undefined,
  ) {}

  prune(flow: string, ver: number): void {
    const { runs, maxAgeMs } = this.config().common.retention;
    const newestFirst = this.table.ofVersion(flow, ver, "archived").reverse();
    const cutoff = now() - maxAgeMs;
    let dropped = 0;
    for (const [i, x] of newestFirst.entries()) {
      if (i < runs && (x.record.endedAt ?? x.record.adoptedAt) >= cutoff) continue;
      dropped++;
      this.table.forget(x.record.ref.run);
      this.remover.add(this.files.runDir("archive", x.record.ref));
      // Its own workspace, where it was made (RunRecord.workspace), whatever the root is now.
      if (!x.record.flow.reuseSpace) this.remover.add(this.folders.workspaceOf(x.record));
    }
    if (dropped > 0) this.pruned();
  }

  /** Removes what is queued (a stop). */
  flush(): Promise<void> {
    return this.remover.flush();
  }
}
