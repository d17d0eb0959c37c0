/**
 * Killing the process groups a crashed host left behind. The hub records each task's
 * pgid (TaskRequest.onStart); after a restart those numbers may belong to someone else by
 * now (PID reuse), so a group is killed only if one of its processes still carries the
 * run's `FLOE_RUN_ID` in the environment it was started with.
 */
import { readdir, readFile } from "node:fs/promises";
import { killGroup } from "./process.js";

/** SIGKILLs group `pgid` if it belongs to run `runId`; true when something was killed. */
export async function killOrphanGroup(pgid: number, runId: string): Promise<boolean> {
  if (!Number.isInteger(pgid) || pgid <= 1 || runId === "") return false;
  if (!exists(pgid)) return false;
  if (!(await groupBelongsTo(pgid, runId))) return false;
  // SIGKILL cannot be caught: once delivered the members die (their zombies may linger
  // until reaped, which is not ours to wait for).
  return killGroup(pgid, "SIGKILL");
}

function exists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The leader is checked first; if it died, any live member of the group will do (the
 * group id cannot be reused while members remain, so they are the task's descendants).
 */
async function groupBelongsTo(pgid: number, runId: string): Promise<boolean> {
  const want = `FLOE_RUN_ID=${runId}`;
  if ((await pgrpOf(pgid)) === pgid) {
    const leader = await environOf(pgid);
    // A zombie leader shows an empty environ: then ask the other members.
    if (leader !== undefined && leader.length > 1) return leader.includes(want);
  }
  let pids: string[];
  try {
    pids = await readdir("/proc");
  } catch {
    return false;
  }
  for (const p of pids) {
    if (!/^\d+$/.test(p)) continue;
    const pid = Number(p);
    if ((await pgrpOf(pid)) !== pgid) continue;
    if ((await environOf(pid))?.includes(want)) return true;
  }
  return false;
}

/** The NUL-separated start environment of `pid`, or undefined when unreadable or gone. */
async function environOf(pid: number): Promise<string[] | undefined> {
  try {
    return (await readFile(`/proc/${pid}/environ`, "utf8")).split("\0");
  } catch {
    return undefined;
  }
}

/** The process group of `pid` from /proc/<pid>/stat (field 5, after the `(comm)` field). */
async function pgrpOf(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // comm may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pgrp = Number(fields[2]);
    return Number.isInteger(pgrp) ? pgrp : undefined;
  } catch {
    return undefined;
  }
}
