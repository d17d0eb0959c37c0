/** Moving a run directory between pending/, active/ and archive/: one rename, made durable. */
import { access, mkdir, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { fsyncDir } from "./atomic-file.js";
import { fsyncEnabled } from "./durability.js";

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Idempotent: if `from` is gone and `to` is there, the move already happened (crash recovery). */
export async function moveRunDir(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" && (await exists(to))) return;
    throw e;
  }
  if (fsyncEnabled()) {
    await fsyncDir(dirname(to));
    await fsyncDir(dirname(from)).catch(() => undefined);
  }
}
