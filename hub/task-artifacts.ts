/**
 * A task's artifacts (DESIGN §6.2): each try of a task gets `$FLOE_ARTIFACTS`, an empty
 * directory, and `$FLOE_INPUTS`, holding copies of the artifacts of every node of the run
 * that ended before it started, as `<node>/<name>`. Both live in the host's scratch area,
 * `<root>/scratch/<run>/<node>.<try>/`, outside the run's workspace (a git checkout there
 * is not disturbed), and are removed after the try. After the task ends, the plain files it
 * left at the top of `$FLOE_ARTIFACTS` are stored (artifact-objects.ts); anything else — a
 * link (never followed), a directory, a name that is not a plain file name — or a size over
 * the limits (`common.artifacts`) makes the task end bad, saying why.
 */
import { constants, mkdirSync, rmdirSync } from "node:fs";
import { chmod, copyFile, lstat, mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ArtifactSettings } from "../flows/model.js";
import type { ArtifactObjects } from "./artifact-objects.js";
import type { ItemFile } from "./fan-out.js";
import type { RunEventRec } from "./run-record.js";
import { errorCode, errorMessage } from "./errors.js";
import type { ArtifactRef } from "./types.js";

/** The artifacts of one node of the run, as a later task finds them. */
export interface NodeArtifacts {
  readonly node: string;
  readonly artifacts: readonly ArtifactRef[];
}

/** A prepared try: its environment, then what it left. */
export interface ArtifactTry {
  /** `FLOE_ARTIFACTS=…` and `FLOE_INPUTS=…`. */
  readonly env: readonly string[];
  /** Where an input (`<node>/<name>`) is in this try's `$FLOE_INPUTS`. */
  input(rel: string): string;
  /** Stores what the task left; a reason (for its log and its end) when it can not be kept. */
  collect(): Promise<{ readonly artifacts: readonly ArtifactRef[] } | { readonly error: string }>;
  /** Removes the try's directories. */
  dispose(): Promise<void>;
}

/** Why `name` is not a plain file name an artifact may have, or undefined. */
export function artifactNameProblem(name: string): string | undefined {
  if (name === "" || name === "." || name === "..") return `"${name}" is not a file name`;
  if (name.includes("/") || name.includes("\\")) return `"${name}" holds a path separator; an artifact is a plain file name`;
  if (name.includes("..")) return `"${name}" holds ".."; an artifact is a plain file name`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return `${JSON.stringify(name)} holds a control character`;
  if (Buffer.byteLength(name) > 255) return `"${name.slice(0, 40)}…" is longer than 255 bytes`;
  return undefined;
}

/**
 * `for-each: artifacts`: the artifacts of the node whose event started the task (the event
 * carries them), each as `<node>/<name>`, its place under an instance's `$FLOE_INPUTS`.
 */
export function itemFilesOf(ev: RunEventRec): ItemFile[] {
  const m = /^task\.([^.]+)\./.exec(ev.tag);
  if (m === null) return [];
  const node = m[1] as string;
  return (ev.artifacts ?? []).map((a) => ({ name: a.name, path: `${node}/${a.name}` }));
}

export function formatBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

/** Removes empty directories, in order; false when one is not empty (or not removable): the caller removes the tree. A missing one is fine. */
function removeEmptyDirs(dirs: readonly string[]): boolean {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch (e) {
      if (errorCode(e) !== "ENOENT") return false;
    }
  }
  return true;
}

export class TaskArtifacts {
  /** Run folders of the scratch area made by this process (made once per run, not per try). */
  private readonly runDirs = new Set<string>();

  constructor(
    private readonly objects: ArtifactObjects,
    /** `<root>/scratch`. */
    readonly scratch: string,
    private readonly settings: () => ArtifactSettings,
  ) {}

  /**
   * Makes the try's directories and places its inputs. `others`: the artifacts of the run's
   * other nodes that ended (they are the inputs, and count towards the run's size cap).
   * Inputs are copied for `exec` tasks only: the other types (git, fetch, timer) run no
   * command of the flow's that could read them, and a copy of a large artifact is not free.
   */
  async prepare(run: string, node: string, type: string, tryKey: string, others: readonly NodeArtifacts[]): Promise<ArtifactTry> {
    const runDir = join(this.scratch, run);
    const dir = join(runDir, `${node}.${tryKey}`);
    const out = join(dir, "artifacts");
    const inputs = join(dir, "inputs");
    // Every task try makes these, so they cost three mkdir calls and no more (no recursive
    // walks, no thread-pool round trips: the sync calls, as store/atomic-file.ts explains).
    // A try's name is new: the area is cleared at start and a resumed task's try is higher;
    // a leftover all the same (an instance key reused) is removed first.
    if (!this.runDirs.has(runDir)) {
      mkdirSync(runDir, { recursive: true, mode: 0o700 });
      this.runDirs.add(runDir);
    }
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (errorCode(e) !== "EEXIST") throw e;
      await rm(dir, { recursive: true, force: true });
      mkdirSync(dir, { mode: 0o700 });
    }
    mkdirSync(out, { mode: 0o700 });
    mkdirSync(inputs, { mode: 0o700 });
    let placed = false;
    for (const n of type === "exec" ? others : []) {
      if (n.artifacts.length === 0) continue;
      const to = join(inputs, n.node);
      await mkdir(to, { recursive: true });
      placed = true;
      for (const a of n.artifacts) {
        const dest = join(to, a.name);
        // A copy, never a link into the store: a task may change its inputs.
        // (A reflink where the file system has them: shared blocks, copied when changed.)
        await copyFile(await this.objects.localPath(a.sha256), dest, constants.COPYFILE_FICLONE);
        await chmod(dest, 0o644);
      }
    }
    const before = others.reduce((sum, n) => sum + n.artifacts.reduce((s, a) => s + a.size, 0), 0);
    return {
      env: [`FLOE_ARTIFACTS=${out}`, `FLOE_INPUTS=${inputs}`],
      input: (rel) => join(inputs, rel),
      collect: () => this.collect(out, before),
      // Empty, as most tries leave them: three rmdir calls; else the whole tree.
      dispose: async () => {
        if (placed || !removeEmptyDirs([out, inputs, dir])) await rm(dir, { recursive: true, force: true });
      },
    };
  }

  /** What the task left in `out`, checked, then stored; `before`: bytes of the run's other artifacts. */
  private async collect(out: string, before: number): Promise<{ artifacts: ArtifactRef[] } | { error: string }> {
    const { maxSize, maxRunSize } = this.settings();
    const names = (await readdir(out)).sort();
    const problems: string[] = [];
    const files: { name: string; size: number }[] = [];
    for (const name of names) {
      const why = artifactNameProblem(name);
      if (why !== undefined) {
        problems.push(why);
        continue;
      }
      const st = await lstat(join(out, name));
      if (st.isSymbolicLink()) problems.push(`"${name}" is a symbolic link; links are not followed, leave the file itself`);
      else if (st.isDirectory()) problems.push(`"${name}" is a directory; only plain files at the top of $FLOE_ARTIFACTS are kept (archive a directory into one file)`);
      else if (!st.isFile()) problems.push(`"${name}" is not a regular file`);
      else if (st.size > maxSize) problems.push(`"${name}" is ${formatBytes(st.size)}, over the limit of ${formatBytes(maxSize)} per artifact (common.artifacts.max-size)`);
      else files.push({ name, size: st.size });
    }
    if (problems.length > 0) return { error: `artifacts refused: ${problems.join("; ")}` };
    const total = files.reduce((s, f) => s + f.size, 0);
    if (before + total > maxRunSize) {
      return { error: `artifacts refused: ${formatBytes(total)} more would bring the run's artifacts to ${formatBytes(before + total)}, over the limit of ${formatBytes(maxRunSize)} per run (common.artifacts.max-run-size)` };
    }
    const kept: ArtifactRef[] = [];
    for (const f of files) {
      try {
        const o = await this.objects.keep(join(out, f.name));
        // The file may have grown after it was looked at (a process the task left behind).
        if (o.size > maxSize) return { error: `artifacts refused: "${f.name}" is ${formatBytes(o.size)}, over the limit of ${formatBytes(maxSize)} per artifact (common.artifacts.max-size)` };
        kept.push({ name: f.name, size: o.size, sha256: o.sha256 });
      } catch (e) {
        return { error: `artifact "${f.name}" could not be stored: ${errorMessage(e)}` };
      }
    }
    return { artifacts: kept };
  }

  /**
   * A for-each task's artifacts: what its instances left, together. Two instances that left
   * the same name with different bytes can not both be kept under it: the task ends bad
   * (name them by the item, e.g. `out-$FLOE_ITEM_INDEX.bin`); the same bytes are one.
   */
  combineInstances(lists: readonly (readonly ArtifactRef[] | undefined)[], others: readonly NodeArtifacts[]): { artifacts: ArtifactRef[] } | { error: string } {
    const byName = new Map<string, ArtifactRef>();
    const clashes = new Set<string>();
    for (const list of lists) {
      for (const a of list ?? []) {
        const had = byName.get(a.name);
        if (had !== undefined && had.sha256 !== a.sha256) clashes.add(a.name);
        else byName.set(a.name, a);
      }
    }
    if (clashes.size > 0) return { error: `artifacts refused: instances left different files under the same name (${[...clashes].map((n) => `"${n}"`).join(", ")}); name them by the item, e.g. with $FLOE_ITEM_INDEX` };
    const artifacts = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const { maxRunSize } = this.settings();
    const total = artifacts.reduce((s, a) => s + a.size, 0) + others.reduce((sum, n) => sum + n.artifacts.reduce((s, a) => s + a.size, 0), 0);
    if (total > maxRunSize) return { error: `artifacts refused: the instances' artifacts bring the run's to ${formatBytes(total)}, over the limit of ${formatBytes(maxRunSize)} per run (common.artifacts.max-run-size)` };
    return { artifacts };
  }

  /** A run ended: its scratch area goes. */
  async forgetRun(run: string): Promise<void> {
    const runDir = join(this.scratch, run);
    this.runDirs.delete(runDir);
    if (!removeEmptyDirs([runDir])) await rm(runDir, { recursive: true, force: true });
  }

  /** At start: nothing in the scratch area is needed (interrupted tries run again, afresh). */
  clear(): Promise<void> {
    this.runDirs.clear();
    return rm(this.scratch, { recursive: true, force: true });
  }
}
