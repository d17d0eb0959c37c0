/**
 * One host per --root: two hosts writing the same run files would corrupt each other's
 * runs. `<root>/lock` holds the pid of the host that owns the root. It is created with
 * O_EXCL, so of two hosts starting at once only one gets it; a lock left by a host that
 * died (kill -9, a power cut) names a pid that is gone, or that now belongs to some other
 * program, and is taken over.
 */
import { access, link, open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

export class RootInUse extends Error {
  constructor(
    readonly root: string,
    readonly pid: number,
  ) {
    super(`root ${root} is in use by pid ${pid}`);
  }
}

export interface RootLock {
  readonly path: string;
  /** Removes the lock if it is still ours; idempotent. */
  release(): Promise<void>;
}

export async function lockRoot(root: string): Promise<RootLock> {
  const path = join(root, "lock");
  // A few rounds: each stale lock removed may race with another host taking it over.
  for (let round = 0; round < 5; round++) {
    try {
      const f = await open(path, "wx", 0o644);
      try {
        await f.writeFile(`${process.pid}\n`);
      } finally {
        await f.close();
      }
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          if ((await holder(path)) === process.pid) await unlink(path).catch(() => undefined);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const pid = await holder(path);
    if (pid !== undefined && (await isLiveFloe(pid))) throw new RootInUse(root, pid);
    await removeStale(path, pid);
  }
  throw new Error(`could not take ${path}: other hosts keep taking it over`);
}

/** The pid in the lock file; undefined when it is gone or unreadable (half-written by a host that died). */
async function holder(path: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(path, "utf8")).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes a stale lock, unless another host replaced it in the meantime: the lock is moved
 * aside first (a rename is atomic), and put back when what was moved is not what we judged.
 */
async function removeStale(path: string, stalePid: number | undefined): Promise<void> {
  const aside = `${path}.stale.${process.pid}`;
  try {
    await rename(path, aside);
  } catch {
    return; // gone already: someone else removed it
  }
  const moved = await holder(aside);
  if (moved !== stalePid && moved !== undefined && (await isLiveFloe(moved))) {
    await link(aside, path).catch(() => undefined); // put back the live host's lock
  }
  await unlink(aside).catch(() => undefined);
}

/** Whether `pid` is a running process that looks like floe (not a pid reused by another program). */
async function isLiveFloe(pid: number): Promise<boolean> {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists, owned by another user.
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    // Linux: its command line names floe (node …/floe.js, or the floe bin). Elsewhere we can
    // not tell, and a live process is taken to be the host.
    return (await readFile(`/proc/${pid}/cmdline`, "utf8")).includes("floe");
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ENOENT" || !(await exists("/proc/self"));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
