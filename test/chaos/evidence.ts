/**
 * The tasks' own evidence (see workload.ts), read back as task executions: one per process
 * (run, node, host, attempt, pid), from its `start` line to its `end`, `fail` or `term` line.
 */
import { evidence } from "../helpers/cluster.js";

export interface Execution {
  readonly run: string;
  readonly flow: string;
  readonly node: string;
  readonly host: string;
  readonly attempt: number;
  readonly pid: number;
  readonly startNs: bigint;
  /** When it finished (`end`/`fail`/`term`); undefined when it left no such line. */
  endNs?: bigint;
  endKind?: "end" | "fail" | "term";
}

export interface Evidence {
  readonly executions: Execution[];
  /** Lines that do not parse (a torn line would be a bug of the evidence itself). */
  readonly bad: string[];
}

export function readEvidence(path: string): Evidence {
  const open = new Map<string, Execution>();
  const executions: Execution[] = [];
  const bad: string[] = [];
  for (const line of evidence(path)) {
    const f = line.split(" ");
    const [kind, run, flow, node, host, attempt, pid, ns] = f;
    if (f.length !== 8 || kind === undefined || run === undefined || flow === undefined || node === undefined || host === undefined || !/^\d+$/.test(attempt ?? "") || !/^\d+$/.test(pid ?? "") || !/^\d+$/.test(ns ?? "")) {
      bad.push(line);
      continue;
    }
    const id = `${run} ${node} ${host} ${attempt} ${pid}`;
    if (kind === "start") {
      const e: Execution = { run, flow, node, host, attempt: Number(attempt), pid: Number(pid), startNs: BigInt(ns as string) };
      open.set(id, e);
      executions.push(e);
    } else if (kind === "end" || kind === "fail" || kind === "term") {
      const e = open.get(id);
      if (e === undefined || e.endNs !== undefined) {
        bad.push(line);
        continue;
      }
      e.endNs = BigInt(ns as string);
      e.endKind = kind;
    } else bad.push(line);
  }
  return { executions, bad };
}
