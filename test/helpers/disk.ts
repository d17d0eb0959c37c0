/**
 * A small tmpfs to stand for a disk that fills up (root only: mounting needs it), and a
 * file that fills it to the last byte.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

/** Mounts a tmpfs of `sizeMb` at `dir`; returns why not when it can not. */
export function mountTmpfs(dir: string, sizeMb: number): string | undefined {
  if (process.getuid?.() !== 0) return "not root";
  try {
    mkdirSync(dir, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", dir], { stdio: "pipe" });
    return undefined;
  } catch (e) {
    return `mount failed: ${String(e)}`;
  }
}

export function unmount(dir: string): void {
  try {
    execFileSync("umount", ["-l", dir], { stdio: "pipe" });
  } catch {
    // not mounted
  }
}

/** Fills the filesystem under `dir` with one file until ENOSPC; returns its path. */
export async function fillDisk(dir: string): Promise<string> {
  const path = join(dir, "disk-fill");
  const f = await open(path, "w");
  const chunk = Buffer.alloc(1 << 20, 0x61);
  try {
    for (;;) await f.write(chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
    // then the last partial chunk, down to a sector
    for (let size = chunk.length >> 1; size >= 512; size >>= 1) {
      try {
        for (;;) await f.write(chunk.subarray(0, size));
      } catch {
        // smaller next
      }
    }
  } finally {
    await f.close();
  }
  return path;
}
