/**
 * A run's journal (DESIGN §6.4): the status records of all its nodes in one append-only
 * file, `[node, record]` per line, group-committed by {@link AppendLog} (every record ready
 * in a turn goes out in one write and one fdatasync). One file and one sync for the whole
 * run where a file per node made a new inode and a sync for each.
 *
 * Runs written before the journal kept a `node-<node>.json` per node: {@link readRunJournal}
 * reads those too (first, since they are older), so a run archived by an earlier version,
 * or one left active by it and resumed by this one, reads back whole.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { AppendLog, readJsonLines } from "./append-log.js";
import { fileError } from "./atomic-file.js";
import { errorCode } from "../flows/errors.js";

/** The journal's name in a run folder. */
export const JOURNAL = "journal";

/**
 * The key of records about the run itself rather than one of its nodes (its activation):
 * never a node id, which is never empty.
 */
export const RUN_KEY = "";

/** The per-node status files of the layout before the journal. */
const LEGACY_STATUS = /^node-(.+)\.json$/;

export class RunJournal {
  readonly log: AppendLog;

  constructor(readonly path: string) {
    this.log = new AppendLog(path);
  }

  /**
   * Queues one node's record; see {@link AppendLog.append} for `lazy` and `syncWithinMs`.
   * A record that asks for no sync of its own becomes durable with the next one that
   * does, of any node.
   */
  append(node: string, record: unknown, o: { lazy?: boolean; syncWithinMs?: number } = {}): void {
    this.log.append([node, record], o);
  }

  /** Resolves when every record appended so far, of every node, is durable. */
  flush(): Promise<void> {
    return this.log.flush();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

export interface JournalRead {
  /** Each node's records, oldest first. */
  readonly byNode: Map<string, unknown[]>;
  /** The journal's last line was torn (a crash mid-write) and was left out. */
  readonly torn: boolean;
  /** Lines that are not `[node, record]`, left out. */
  readonly bad: number;
}

/** Reads a run folder's status records: old per-node files first, then the journal. */
export async function readRunJournal(dir: string): Promise<JournalRead> {
  const byNode = new Map<string, unknown[]>();
  const add = (node: string, rec: unknown): void => {
    const list = byNode.get(node);
    if (list === undefined) byNode.set(node, [rec]);
    else list.push(rec);
  };
  let bad = 0;
  for (const name of await legacyStatusFiles(dir)) {
    const node = (LEGACY_STATUS.exec(name) as RegExpExecArray)[1] as string;
    for (const rec of (await readJsonLines(join(dir, name))).records) add(node, rec);
  }
  const j = await readJsonLines(join(dir, JOURNAL));
  for (const line of j.records) {
    if (Array.isArray(line) && line.length === 2 && typeof line[0] === "string") add(line[0], line[1]);
    else bad++;
  }
  return { byNode, torn: j.torn, bad: bad + j.corrupt };
}

/** The `node-*.json` files of a folder; none in a folder made with a journal. */
async function legacyStatusFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errorCode(e) === "ENOENT") return [];
    throw fileError(`can not list ${dir}`, e);
  }
  return names.filter((n) => LEGACY_STATUS.test(n)).sort();
}
