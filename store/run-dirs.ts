/** Moving a run directory between pending/, active/ and archive/: one rename, made durable. */
import { access, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { ensureDir, errnoCode, fileError, fsyncDir } from "./atomic-file.js";
import { fsyncEnabled } from "./durability.js";

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Renames `from` to `to`, creating `to`'s parent. Idempotent: if `from` is gone and `to` is
 * there, the move already happened (a crash after the rename, recovery calls again); the
 * folders are synced in that case too, since that earlier rename may never have reached disk.
 */
export async function moveRunDir(from: string, to: string): Promise<void> {
  await ensureDir(dirname(to));
  try {
    await rename(from, to);
  } catch (e) {
    const code = errnoCode(e);
    if (code === "ENOENT" && !(await exists(from))) {
      if (!(await exists(to))) throw fileError(`can not move run directory ${from} to ${to}: neither exists`, e);
    } else if (code === "ENOTEMPTY" || code === "EEXIST") {
      throw fileError(`can not move run directory ${from} to ${to}: the target already exists`, e);
    } else {
      throw fileError(`can not move run directory ${from} to ${to}`, e);
    }
  }
  if (!fsyncEnabled()) return;
  // Both entries changed: the new one in to's parent, the removal in from's parent.
  await Promise.all([syncParent(to), dirname(from) !== dirname(to) ? syncParent(from) : undefined]);
}

async function syncParent(p: string): Promise<void> {
  try {
    await fsyncDir(dirname(p));
  } catch (e) {
    // A parent pruned meanwhile has nothing left to make durable.
    if (errnoCode(e) !== "ENOENT") throw fileError(`can not sync the folder of ${p}`, e);
  }
}
