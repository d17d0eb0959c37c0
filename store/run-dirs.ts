/** Moving a run directory between pending/, active/ and archive/: one rename, made durable (sync calls but for the fsyncs: see atomic-file.ts). */
import { existsSync, renameSync } from "node:fs";
import { dirname } from "node:path";
import { ensureDir, fileError, fsyncDir } from "./atomic-file.js";
import { fsyncEnabled } from "./durability.js";
import { errorCode } from "../flows/errors.js";

/**
 * Renames `from` to `to`, creating `to`'s parent. Idempotent: if `from` is gone and `to` is
 * there, the move already happened (a crash after the rename, recovery calls again); the
 * folders are synced in that case too, since that earlier rename may never have reached disk.
 * With `sync: false` the caller syncs both parents (see {@link movedParents}) with its own
 * writes in one round.
 */
export async function moveRunDir(from: string, to: string, o: { sync?: boolean } = {}): Promise<void> {
  try {
    try {
      renameSync(from, to);
    } catch (e) {
      // The first run to reach this state in its flow version: make the folder (one call
      // per run fewer than making sure of it every time).
      if (errorCode(e) !== "ENOENT" || !existsSync(from)) throw e;
      await ensureDir(dirname(to));
      renameSync(from, to);
    }
  } catch (e) {
    const code = errorCode(e);
    if (code === "ENOENT" && !existsSync(from)) {
      if (!existsSync(to)) throw fileError(`can not move run directory ${from} to ${to}: neither exists`, e);
    } else if (code === "ENOTEMPTY" || code === "EEXIST") {
      throw fileError(`can not move run directory ${from} to ${to}: the target already exists`, e);
    } else {
      throw fileError(`can not move run directory ${from} to ${to}`, e);
    }
  }
  if (o.sync === false || !fsyncEnabled()) return;
  await Promise.all(movedParents(from, to).map((p) => syncFolder(p)));
}

/** Both entries a move changed: the new one in to's parent, the removal in from's parent. */
export function movedParents(from: string, to: string): string[] {
  return dirname(from) === dirname(to) ? [dirname(to)] : [dirname(to), dirname(from)];
}

/** fsyncDir that forgives a folder pruned meanwhile: it has nothing left to make durable. */
export async function syncFolder(dir: string): Promise<void> {
  try {
    await fsyncDir(dir);
  } catch (e) {
    if (errorCode(e) !== "ENOENT") throw fileError(`can not sync the folder ${dir}`, e);
  }
}
