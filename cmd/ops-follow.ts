/**
 * `floe trigger` and `floe logs`: the commands that print a run's output, and with
 * `--follow` stream it over the API's event stream until the run ends (exit 0 if it ended
 * good, 1 otherwise). The stream is opened before the run is started or its history read,
 * so no line falls between the two; lines seen twice are printed once (by node and number).
 */
import { listFlag, stringFlag, UsageError, type Parsed } from "./flags.js";
import { clientFrom, OpsError, type Client } from "./ops-client.js";
import { isRunRow, logLine, type RunRow } from "./ops-format.js";
import { nodeArg, runArg } from "./ops-runs.js";
import type { Out } from "./validate.js";

interface Line {
  readonly node: string;
  readonly attempt: number;
  readonly seq: number;
  readonly at: number;
  readonly text: string;
  readonly stream: string;
}

function lineOf(node: string, x: unknown): Line | undefined {
  if (x === null || typeof x !== "object") return undefined;
  const l = x as Record<string, unknown>;
  if (typeof l["seq"] !== "number" || typeof l["at"] !== "number" || typeof l["text"] !== "string") return undefined;
  return { node, attempt: typeof l["attempt"] === "number" ? l["attempt"] : 1, seq: l["seq"], at: l["at"], text: l["text"], stream: typeof l["stream"] === "string" ? l["stream"] : "out" };
}

/** Prints lines once each, in the form asked for. */
class Printer {
  private readonly last = new Map<string, number>();
  constructor(
    private readonly io: Out,
    private readonly flow: string,
    private readonly json: boolean,
  ) {}
  print(l: Line): void {
    const key = `${l.attempt}/${l.node}`;
    if (l.seq <= (this.last.get(key) ?? 0)) return;
    this.last.set(key, l.seq);
    this.io.out(this.json ? JSON.stringify(l) : logLine(this.flow, l.node, l.at, l.text));
  }
}

/**
 * Follows run events until the run `want()` names ends. `onReady` runs once the stream is
 * open. Events that come before the run's id is known are kept and handed over then.
 */
async function follow(c: Client, query: string, o: { want: () => string | undefined; onLog: (l: Line) => void; onReady: () => Promise<void>; signal: AbortSignal }): Promise<RunRow | undefined> {
  const ctl = new AbortController();
  const stop = () => ctl.abort();
  o.signal.addEventListener("abort", stop, { once: true });
  let ended: RunRow | undefined;
  const early: { type: string; data: unknown }[] = [];
  let ready: () => void = () => undefined;
  const opened = new Promise<void>((r) => (ready = r));
  const handle = (type: string, data: unknown): boolean => {
    const run = o.want();
    if (run === undefined) {
      early.push({ type, data });
      return false;
    }
    const ev = data as { type?: string; ref?: { run?: string }; node?: unknown; line?: unknown; summary?: unknown };
    if (ev.type === "log" && ev.ref?.run === run && typeof ev.node === "string") {
      const l = lineOf(ev.node, ev.line);
      if (l !== undefined) o.onLog(l);
    } else if (ev.type === "run" && isRunRow(ev.summary) && ev.summary.ref.run === run && ev.summary.state === "archived") {
      ended = ev.summary;
      return true;
    }
    return false;
  };
  try {
    const streaming = c.events(query, (type, data) => {
      if (type === "hello") {
        ready();
        return false;
      }
      return handle(type, data);
    }, ctl.signal);
    // The stream answers `hello` at once; an error before it (no server, bad token) ends it.
    await Promise.race([opened, streaming]);
    await o.onReady();
    for (const e of early.splice(0)) if (handle(e.type, e.data)) return ended;
    try {
      await streaming;
    } catch (e) {
      // Cut once open (its host restarted): the caller looks for the run again.
      if (!(e instanceof OpsError)) throw e;
    }
    return ended;
  } finally {
    o.signal.removeEventListener("abort", stop);
    ctl.abort();
  }
}

/** After the stream closed without the run's end (a host restart): the run as it is now. */
async function endOf(c: Client, run: string): Promise<RunRow | undefined> {
  const r = await c.call<unknown>("GET", `/runs/${run}`);
  return isRunRow(r) && r.state === "archived" ? r : undefined;
}

function finish(io: Out, r: RunRow): number {
  io.err(`run ${r.ref.run} ended ${r.result ?? "?"}${r.reason !== undefined && r.reason !== "" ? `: ${r.reason}` : ""}`);
  return r.result === "good" ? 0 : 1;
}

function stopped(io: Out, run: string): number {
  io.err(`stopped following run ${run}; it goes on (floe cancel ${run} stops it)`);
  return 130;
}

/** Tries to find a followed run again after its stream closed early, before giving up. */
const RECONNECTS = 12;

/**
 * Follows `run` until it ends: `ended` is what the first stream saw. A stream that closed
 * before the end (its host restarted) is opened again, with a growing pause, while the
 * run is not over; the lines printed meanwhile are not read back.
 */
async function followRun(c: Client, run: string, onLog: (l: Line) => void, signal: AbortSignal, io: Out, ended: RunRow | undefined): Promise<number> {
  for (let tries = 1; ended === undefined; tries++) {
    if (signal.aborted) return stopped(io, run);
    try {
      ended = (await endOf(c, run)) ?? (await follow(c, `run=${encodeURIComponent(run)}`, { want: () => run, onLog, onReady: async () => undefined, signal }));
    } catch (e) {
      if (!(e instanceof OpsError) || tries >= RECONNECTS) throw e;
    }
    if (ended === undefined && !signal.aborted) await new Promise((r) => setTimeout(r, Math.min(5000, 125 * 2 ** tries)));
  }
  return finish(io, ended);
}

export async function triggerCommand(p: Parsed, io: Out, signal: AbortSignal): Promise<number> {
  const [flow, ...rest] = p.positionals;
  if (flow === undefined || flow === "") throw new UsageError("which flow? give its id (see GET /flows or the dashboard)");
  nodeArg(flow, "flow");
  if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0] ?? ""}`);
  const values: Record<string, string> = {};
  for (const s of listFlag(p, "set")) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UsageError(`--set ${s}: expected key=value`);
    values[s.slice(0, eq)] = s.slice(eq + 1);
  }
  const trigger = stringFlag(p, "trigger");
  const body = { ...(trigger !== undefined ? { trigger } : {}), values };
  const c = clientFrom(p);
  const json = p.values["json"] === true;
  const start = async (): Promise<RunRow> => {
    const answer = await c.call<{ run?: unknown }>("POST", `/flows/${flow}/runs`, body);
    if (!isRunRow(answer.run)) throw new OpsError(`the server answered without a run: ${JSON.stringify(answer)}`);
    return answer.run;
  };
  if (p.values["follow"] !== true) {
    const run = await start();
    io.out(json ? JSON.stringify(run, null, 2) : run.ref.run);
    return 0;
  }
  let run: string | undefined;
  const printer = new Printer(io, flow, json);
  const ended = await follow(c, `flow=${encodeURIComponent(flow)}`, {
    want: () => run,
    onLog: (l) => printer.print(l),
    onReady: async () => {
      const r = await start();
      run = r.ref.run;
      io.err(`started run ${run} of ${r.ref.flow}/${r.ref.ver}; following it (Ctrl-C stops following)`);
    },
    signal,
  });
  if (run === undefined) return 1;
  return followRun(c, run, (l) => printer.print(l), signal, io, ended);
}

interface NodeRow {
  readonly id: string;
  readonly logLines?: number;
}

export async function logsCommand(p: Parsed, io: Out, signal: AbortSignal): Promise<number> {
  const run = runArg(p, 1);
  const only = p.positionals[1] !== undefined ? nodeArg(p.positionals[1]) : undefined;
  const c = clientFrom(p);
  const detail = await c.call<unknown>("GET", `/runs/${run}`);
  if (!isRunRow(detail)) throw new OpsError(`the server's answer for run ${run} is not a run`);
  const nodes = ((detail as { nodes?: unknown }).nodes ?? []) as NodeRow[];
  if (only !== undefined && !nodes.some((n) => n.id === only)) throw new OpsError(`run ${run} has no node ${only} (nodes: ${nodes.map((n) => n.id).join(", ")})`);
  const printer = new Printer(io, detail.ref.flow, p.values["json"] === true);
  const history = async (): Promise<void> => {
    const lines: Line[] = [];
    for (const n of nodes) {
      if (only !== undefined && n.id !== only) continue;
      if (only === undefined && n.logLines === 0) continue;
      for (let after = 0, more = true; more; ) {
        const page = await c.call<{ lines?: unknown[]; more?: boolean }>("GET", `/runs/${run}/nodes/${n.id}/log?after=${after}&limit=5000`);
        const got = (page.lines ?? []).map((x) => lineOf(n.id, x)).filter((l): l is Line => l !== undefined);
        lines.push(...got);
        more = page.more === true && got.length > 0;
        after = got.at(-1)?.seq ?? after;
      }
    }
    // In the order they were printed, whichever node printed them.
    for (const l of lines.sort((a, b) => a.at - b.at || a.seq - b.seq)) printer.print(l);
  };
  if (p.values["follow"] !== true || detail.state === "archived") {
    await history();
    if (p.values["follow"] === true) return finish(io, detail);
    return 0;
  }
  const onLog = (l: Line): void => {
    if (only === undefined || l.node === only) printer.print(l);
  };
  // Lines streamed while the history is read wait for it: printed after, those it had skipped.
  let known: string | undefined;
  const onReady = async (): Promise<void> => {
    await history();
    known = run;
  };
  const ended = await follow(c, `run=${encodeURIComponent(run)}`, { want: () => known, onLog, onReady, signal });
  return followRun(c, run, onLog, signal, io, ended);
}
