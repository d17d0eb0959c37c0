/** `floe runs`, `floe cancel`, `floe pause`, `floe resume`, `floe rerun`: one request each. */
import { stringFlag, UsageError, type Parsed } from "./flags.js";
import { clientFrom, type Client } from "./ops-client.js";
import { formatTable, isRunRow, RUN_HEAD, runCells } from "./ops-format.js";
import type { Out } from "./validate.js";

const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;
const NODE_ID = /^[a-z0-9_][a-z0-9_-]{0,127}$/;

/** The RUN argument (and no more than `extra` others). */
export function runArg(p: Parsed, extra = 0): string {
  const [run, ...rest] = p.positionals;
  if (run === undefined || run === "") throw new UsageError("which run? give its id (see floe runs)");
  if (!RUN_ID.test(run)) throw new UsageError(`"${run}" is not a run id (letters, digits, - and _)`);
  if (rest.length > extra) throw new UsageError(`unexpected argument ${rest[extra] ?? ""}`);
  return run;
}

export function nodeArg(node: string, what = "node"): string {
  if (!NODE_ID.test(node)) throw new UsageError(`"${node}" is not a ${what} id`);
  return node;
}

export async function runsCommand(p: Parsed, io: Out, tty: boolean): Promise<number> {
  const q = new URLSearchParams();
  const flow = stringFlag(p, "flow");
  if (flow !== undefined) q.set("flow", nodeArg(flow, "flow"));
  const state = stringFlag(p, "state");
  if (state !== undefined) {
    if (!["pending", "active", "archived"].includes(state)) throw new UsageError(`--state=${state}: expected pending, active or archived`);
    q.set("state", state);
  }
  const limitText = stringFlag(p, "limit") ?? "20";
  const limit = Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit=${limitText}: expected a whole number from 1 to 1000`);
  q.set("limit", String(limit));
  const c = clientFrom(p);
  const answer = await c.call<{ runs?: unknown }>("GET", `/runs?${q.toString()}`);
  const runs = Array.isArray(answer.runs) ? answer.runs.filter(isRunRow) : [];
  if (p.values["json"] === true) {
    io.out(JSON.stringify(runs, null, 2));
    return 0;
  }
  if (runs.length === 0) {
    io.err(`no runs${flow !== undefined ? ` of flow ${flow}` : ""}${state !== undefined ? ` that are ${state}` : ""} on ${c.server}`);
    return 0;
  }
  for (const line of formatTable(RUN_HEAD, runs.map((r) => runCells(r)), tty)) io.out(line);
  return 0;
}

type Verb = "cancel" | "pause" | "resume";
const DONE: Readonly<Record<Verb, string>> = { cancel: "cancelled", pause: "paused", resume: "resumed" };

/** POST /runs/:id/<verb>; prints what became of the run. */
export async function controlCommand(verb: Verb, p: Parsed, io: Out): Promise<number> {
  const run = runArg(p);
  const c = clientFrom(p);
  const answer = await c.call<{ run?: unknown }>("POST", `/runs/${run}/${verb}`, {});
  if (p.values["json"] === true) {
    io.out(JSON.stringify(answer, null, 2));
    return 0;
  }
  const r = answer.run;
  io.out(isRunRow(r) ? `${DONE[verb]} run ${r.ref.run} (${r.ref.flow}/${r.ref.ver})${r.state === "archived" && r.result !== undefined ? `: ${r.result}` : ""}` : `${DONE[verb]} run ${run}`);
  return 0;
}

/** POST /runs/:id/rerun {from?}; prints the new run's id. */
export async function rerunCommand(p: Parsed, io: Out): Promise<number> {
  const run = runArg(p);
  const from = stringFlag(p, "from");
  const c: Client = clientFrom(p);
  const answer = await c.call<{ run?: unknown }>("POST", `/runs/${run}/rerun`, from !== undefined ? { from: nodeArg(from) } : {});
  if (p.values["json"] === true) {
    io.out(JSON.stringify(answer, null, 2));
    return 0;
  }
  // The answer's run is a RunRef (DESIGN §6.3) or a summary holding one.
  const r = answer.run as { run?: unknown; ref?: { run?: unknown } } | undefined;
  const id = typeof r?.run === "string" ? r.run : typeof r?.ref?.run === "string" ? r.ref.run : undefined;
  if (id === undefined) {
    io.err(`floe rerun: the server answered without the new run's id: ${JSON.stringify(answer)}`);
    return 1;
  }
  io.out(id);
  return 0;
}
