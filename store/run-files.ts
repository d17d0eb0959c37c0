/**
 * The run directories of DESIGN §6.4: where each file of a run lives, and the few ways a
 * run's files change. A run directory moves between pending/, active/ and archive/ by
 * rename; run.json is replaced atomically; the journal (every node's status records) and
 * each node's output are append-only.
 */
import { mkdirSync } from "node:fs";
import { readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AppendLog, readJsonLines } from "./append-log.js";
import { ensureDir, readJsonFile, removeStaleTemps, syncNewDirs, writeFileAtomic } from "./atomic-file.js";
import { fsyncEnabled } from "./durability.js";
import { movedParents, moveRunDir, syncFolder } from "./run-dirs.js";
import { JOURNAL, readRunJournal, RunJournal, type JournalRead } from "./run-journal.js";
import { errorCode } from "../flows/errors.js";

export type RunDirState = "pending" | "active" | "archive";

export interface RunLocation {
  readonly flow: string;
  readonly ver: number;
  readonly run: string;
}

export class RunFiles {
  constructor(readonly root: string) {}

  flowDir(flow: string, ver: number): string {
    return join(this.root, "floes", flow, String(ver));
  }

  runDir(state: RunDirState, r: RunLocation): string {
    return join(this.flowDir(r.flow, r.ver), state, r.run);
  }

  /** The folder of a flow version's runs in one state (`…/<ver>/pending`). */
  stateDir(state: RunDirState, flow: string, ver: number): string {
    return join(this.flowDir(flow, ver), state);
  }

  /** `<run>/journal`: the status records of every node of the run. */
  journalPath(state: RunDirState, r: RunLocation): string {
    return join(this.runDir(state, r), JOURNAL);
  }

  /** `<run>/<node>.log`: a node's output lines, made when it first prints. */
  nodeLogPath(state: RunDirState, r: RunLocation, node: string): string {
    return join(this.runDir(state, r), `${node}.log`);
  }

  /** Where the layout before the journal kept a node's output (still read). */
  legacyNodeLogPath(state: RunDirState, r: RunLocation, node: string): string {
    return join(this.runDir(state, r), `node-${node}.log`);
  }

  /** `floes/<flow>/<ver>/flow.yml`: the definition this version ran with. */
  async writeFlowSnapshot(flow: string, ver: number, yaml: string): Promise<void> {
    await ensureDir(this.flowDir(flow, ver));
    await writeFileAtomic(join(this.flowDir(flow, ver), "flow.yml"), yaml);
  }

  /** Writes a run's run.json, making its directory if it is new (a pend being adopted). */
  async writeRunJson(state: RunDirState, r: RunLocation, record: unknown): Promise<void> {
    const dir = this.runDir(state, r);
    const path = join(dir, "run.json");
    const text = JSON.stringify(record) + "\n";
    if (state !== "pending") {
      // An active run's directory is there: no mkdir call for it, but for one that is not.
      try {
        return await writeFileAtomic(path, text);
      } catch (e) {
        if (errorCode(e) !== "ENOENT") throw e;
      }
    }
    // A new run directory's entry and the file in it are synced at the same time.
    const created = mkdirSync(dir, { recursive: true });
    await Promise.all([syncNewDirs(dir, created), writeFileAtomic(path, text)]);
  }

  async readRunJson(state: RunDirState, r: RunLocation): Promise<unknown> {
    return readJsonFile(join(this.runDir(state, r), "run.json"));
  }

  async move(from: RunDirState, to: RunDirState, r: RunLocation): Promise<void> {
    await moveRunDir(this.runDir(from, r), this.runDir(to, r));
  }

  /**
   * Makes a run's active directory: moved from pending/ (or new, for a run another host
   * adopted), with its run.json (`record`; undefined: the one moved with it stays), the
   * append-only files `logs` (its journal), and `alongside` (the workspace).
   * Everything is written first and the folders are synced after, in one round: on ext4
   * each sync in a row is a journal commit (≈2 ms here), and one per step was most of the
   * time from trigger to first task.
   */
  async openActive(r: RunLocation, record: unknown, logs: readonly AppendLog[], alongside: () => Promise<unknown>, fromPending: boolean): Promise<void> {
    // A run moved from pending/ keeps the run.json its pend wrote (the facts of its
    // activation go to its journal, one file, sync and rename fewer); one adopted
    // elsewhere has none here yet.
    const writeRecord = record !== undefined;
    const to = this.runDir("active", r);
    const folders = [to];
    let created: string | undefined;
    if (fromPending) {
      const from = this.runDir("pending", r);
      await moveRunDir(from, to, { sync: false });
      folders.push(...movedParents(from, to));
    } else {
      created = mkdirSync(to, { recursive: true });
    }
    // run.json's temp file is synced before its rename (atomic replace); the folders after.
    await Promise.all([writeRecord ? writeFileAtomic(join(to, "run.json"), JSON.stringify(record) + "\n", { syncDir: false }) : undefined, ...logs.map((l) => l.ready({ syncDir: false })), alongside()]);
    if (!fsyncEnabled()) return;
    await Promise.all([...folders.map((f) => syncFolder(f)), syncNewDirs(to, created)]);
  }

  async remove(state: RunDirState, r: RunLocation): Promise<void> {
    await rm(this.runDir(state, r), { recursive: true, force: true });
  }

  openLog(path: string): AppendLog {
    return new AppendLog(path);
  }

  openJournal(state: RunDirState, r: RunLocation): RunJournal {
    return new RunJournal(this.journalPath(state, r));
  }

  /** Every node's status records, by node (the journal, and the files of the old layout). */
  readJournal(state: RunDirState, r: RunLocation): Promise<JournalRead> {
    return readRunJournal(this.runDir(state, r));
  }

  /**
   * A node's output lines: its `<node>.log`, after those of an old-layout `node-<node>.log`
   * (a run left active by an earlier version and resumed by this one has both). A node
   * that never printed has neither.
   */
  async readNodeLog(state: RunDirState, r: RunLocation, node: string): Promise<unknown[]> {
    const [old, now] = await Promise.all([this.readLines(this.legacyNodeLogPath(state, r, node)), this.readLines(this.nodeLogPath(state, r, node))]);
    return old.length === 0 ? now : [...old, ...now];
  }

  async readLines(path: string): Promise<unknown[]> {
    return (await readJsonLines(path)).records;
  }

  /** Every run directory in a state, as locations, oldest run id first. */
  async list(state: RunDirState): Promise<{ loc: RunLocation; dir: string }[]> {
    const out: { loc: RunLocation; dir: string }[] = [];
    const floes = join(this.root, "floes");
    for (const flow of await names(floes)) {
      for (const verName of await names(join(floes, flow))) {
        const ver = Number(verName);
        if (!Number.isInteger(ver)) continue;
        const stateDir = join(floes, flow, verName, state);
        for (const run of await names(stateDir)) {
          const dir = join(stateDir, run);
          if (run.startsWith(".")) continue;
          if (!(await stat(dir)).isDirectory()) continue;
          await removeStaleTemps(dir);
          out.push({ loc: { flow, ver, run }, dir });
        }
      }
    }
    return out.sort((a, b) => a.loc.run.localeCompare(b.loc.run));
  }

  /** A marker file, used to find which host wrote into a run (tests, tooling). */
  async touch(path: string): Promise<void> {
    await writeFile(path, "");
  }
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (errorCode(e) === "ENOENT") return [];
    throw e;
  }
}
