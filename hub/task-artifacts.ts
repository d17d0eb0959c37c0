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
import { constants, mkdirSync } from "node:fs";
import { chmod, copyFile, lstat, mkdir, readdir, rm, rmdir } from "node:fs/promises";
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

/**
 * Makes `dir` (its parent exists), empty: a try's name is new (the area is cleared at start,
 * a resumed task's try is higher), but a leftover all the same is removed first.
 */
async function freshDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if (errorCode(e) !== "EEXIST") throw e;
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o700 });
  }
}

export class TaskArtifacts {
  /** Per run, the scratch folders of its tries not removed yet (a removal that failed, or one still under way). */
  private readonly left = new Map<string, Set<string>>();
  /** Whether the host's empty `.no-inputs` was made (once per process). */
  private madeNoInputs = false;

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
    // Every task try makes its $FLOE_ARTIFACTS, so it costs one mkdir and, left empty as most
    // are, one rmdir, both through the thread pool and straight in the scratch area (no folder
    // per run to make and remove): with the durable writes of runs beside them, ext4 makes a
    // directory operation wait for its journal's commit (0.2–0.5 ms each in the throughput
    // bench), which a sync call would spend blocking the event loop. $FLOE_INPUTS is made only
    // when there is something to place; otherwise it is the host's empty `.no-inputs`.
    const out = join(this.scratch, `${run}.${node}.${tryKey}`);
    const noInputs = join(this.scratch, ".no-inputs");
    if (!this.madeNoInputs) {
      mkdirSync(noInputs, { recursive: true, mode: 0o555 });
      this.madeNoInputs = true;
    }
    const left = this.leftOf(run);
    left.add(out);
    await freshDir(out);
    const places = type === "exec" ? others.filter((n) => n.artifacts.length > 0) : [];
    const inputs = places.length > 0 ? `${out}.in` : noInputs;
    if (places.length > 0) {
      left.add(inputs);
      await freshDir(inputs);
    }
    for (const n of places) {
      const to = join(inputs, n.node);
      mkdirSync(to, { mode: 0o700 });
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
      // Resolves once both are gone; what fails stays listed for the run's end (forgetRun).
      dispose: async () => {
        await rmdir(out).catch(() => rm(out, { recursive: true, force: true }));
        left.delete(out);
        if (places.length > 0) {
          await rm(inputs, { recursive: true, force: true });
          left.delete(inputs);
        }
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
    const left = this.left.get(run);
    this.left.delete(run);
    for (const dir of left ?? []) await rm(dir, { recursive: true, force: true });
  }

  /** The scratch folders of a run's tries not removed yet. */
  private leftOf(run: string): Set<string> {
    let set = this.left.get(run);
    if (set === undefined) {
      set = new Set();
      this.left.set(run, set);
    }
    return set;
  }

  /** At start: nothing in the scratch area is needed (interrupted tries run again, afresh). */
  clear(): Promise<void> {
    this.left.clear();
    this.madeNoInputs = false;
    return rm(this.scratch, { recursive: true, force: true });
  }
}
