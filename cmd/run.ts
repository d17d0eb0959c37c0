/**
 * `floe run FILE [--flow ID] [--set key=value]...`: runs one flow once in the foreground,
 * printing every output line as `<time> [flow.node RUN4] text`; exit 0 when the run ends good.
 * This is how a person develops a flow. A data node the run reaches takes its values from
 * `--set NODE.FIELD=value` or, on a terminal, from prompts (cmd/run-input.ts). The
 * temporary root made for the run is removed when it ends, unless --keep.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { constants, cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { formatDiagnostic } from "../flows/diagnostics.js";
import { validateHostConfig } from "../flows/load.js";
import type { Flow } from "../flows/model.js";
import { errorMessage, FloeError } from "../flows/errors.js";
import type { Hub } from "../hub/hub.js";
import type { NodeStatus } from "../hub/types.js";
import { listFlag, stringFlag, UsageError, type Parsed } from "./flags.js";
import { LOG_FORMATS, logFormatOf } from "./log-format.js";
import { lockRoot, RootInUse, type RootLock } from "./root-lock.js";
import { answerDataNode, splitSets, type Ask, type SetValues } from "./run-input.js";
import type { Out } from "./validate.js";
import { loadHostSecrets } from "./host-secrets.js";
import { embeddedHub, makeLogger, shortHostname } from "./wiring.js";

export async function runCommand(flags: Parsed, io: Out, signal: AbortSignal, ask?: Ask): Promise<number> {
  const [file, ...extra] = flags.positionals;
  if (file === undefined || extra.length > 0) throw new UsageError(file === undefined ? "which flow file? (FILE is missing)" : `one FILE only (also given: ${extra.join(" ")})`);
  const path = resolve(file);
  const res = await validateHostConfig(path);
  for (const d of res.diagnostics) if (d.severity === "error") io.err(formatDiagnostic(d));
  if (res.config === undefined) return 1;
  const flows = res.config.flows;
  const flowId = stringFlag(flags, "flow") ?? (flows.length === 1 ? flows[0]?.id : undefined);
  if (flowId === undefined) throw new UsageError(`${path} has ${flows.length} flows; choose one with --flow (${flows.map((f) => f.id).join(", ")})`);
  const flow = flows.find((f) => f.id === flowId);
  if (flow === undefined) throw new UsageError(`no flow "${flowId}" in ${path} (flows: ${flows.map((f) => f.id).join(", ")})`);
  const sets = splitSets(flow, listFlag(flags, "set"));

  const logFormatText = stringFlag(flags, "log-format") ?? "auto";
  const logFormat = logFormatOf(logFormatText);
  if (logFormat === undefined) throw new UsageError(`--log-format=${logFormatText}: expected ${LOG_FORMATS.join(", ")}`);
  const rootFlag = stringFlag(flags, "root");
  // A root of our own is temporary: it goes when the run has ended, unless --keep.
  const temporary = rootFlag === undefined;
  const root = rootFlag !== undefined ? resolve(rootFlag) : await mkdtemp(join(tmpdir(), "floe-run-"));
  let lock: RootLock | undefined;
  try {
    await mkdir(root, { recursive: true });
    lock = await lockRoot(root);
    const log = makeLogger(stringFlag(flags, "log-level") ?? "warn", logFormat);
    const secrets = await loadHostSecrets(undefined, shortHostname(), res.config, dirname(path), log);
    const hub = embeddedHub({
      secrets,
      config: res.config,
      configDir: dirname(path),
      root,
      host: shortHostname(),
      tags: flow.hostTags,
      slots: Math.max(1, cpus().length),
      log,
      console: (line) => io.out(line),
    });
    const terminal = ask !== undefined ? { ask, close: () => undefined } : process.stdin.isTTY === true ? terminalAsk(signal) : undefined;
    try {
      return await runOnce(hub, flow, sets, io, signal, terminal?.ask);
    } finally {
      terminal?.close();
      await hub.stop(0).catch(() => undefined);
    }
  } catch (e) {
    if (!(e instanceof RootInUse)) throw e;
    io.err(`floe run: ${e.message}; nothing started`);
    return 1;
  } finally {
    await lock?.release();
    if (temporary && flags.values["keep"] !== true) await rm(root, { recursive: true, force: true }).catch(() => undefined);
    else if (temporary) io.err(`floe run: kept the run's files in ${root}`);
  }
}

async function runOnce(hub: Hub, flow: Flow, sets: SetValues, io: Out, signal: AbortSignal, ask: Ask | undefined): Promise<number> {
  await hub.start();
  // A run that waits for something outside this process (a person) holds no timer or
  // socket of its own: without this handle Node would see nothing left to do and exit 0
  // with the run unfinished.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  let stop: string | undefined;
  const answering = new Set<string>();
  let runId: string | undefined;
  const consider = (status: NodeStatus): void => {
    const run = runId;
    if (run === undefined || !isWaitingDataNode(status) || answering.has(status.id)) return;
    answering.add(status.id);
    // Not from inside the bus's delivery: answering publishes events of its own.
    setImmediate(() => {
      answerDataNode(flow, status, sets, (values) => hub.postData(run, status.id, values), ask, io.err)
        .then((message) => {
          if (message === undefined) return;
          stop = message;
          return hub.cancel(run, "floe run: input needed").then(() => undefined);
        })
        .catch((e: unknown) => {
          // A prompt cut short by Ctrl-C is the interrupt's business, not a failure of its own.
          if (!signal.aborted) stop ??= errorMessage(e);
          return hub.cancel(run, "floe run: no input").catch(() => undefined);
        })
        .finally(() => answering.delete(status.id));
    });
  };
  const off = hub.bus.subscribe((ev) => {
    if (ev.type === "node" && ev.ref.run === runId) consider(ev.node);
  });
  try {
    const run = await hub.trigger({ flow: flow.id, ver: flow.ver, values: sets.trigger, anyTrigger: true });
    runId = run.ref.run;
    // Nodes that were already waiting before we knew the run's id.
    for (const n of (await hub.getRun(run.ref.run)).nodes) consider(n);
    io.err(`floe run: run ${run.ref.run} of ${flow.id} (ver ${flow.ver}); workspace ${hub.workspaceForRun(run.ref.run)}`);
    const onAbort = () => void hub.cancel(run.ref.run, "an interrupt (Ctrl-C)").catch(() => undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    const end = await hub.waitForEnd(run.ref.run);
    signal.removeEventListener("abort", onAbort);
    io.err(`floe run: run ${end.ref.run} ended ${end.result ?? "?"}${end.reason ? `: ${end.reason}` : ""}`);
    if (signal.aborted) return interruptedExitCode(signal);
    if (stop !== undefined) {
      io.err(`floe run: ${stop}`);
      return 1;
    }
    return end.result === "good" ? 0 : 1;
  } catch (e) {
    io.err(`floe run: ${e instanceof FloeError ? e.message : String(e)}`);
    return 1;
  } finally {
    off();
    clearInterval(keepAlive);
  }
}

function isWaitingDataNode(n: NodeStatus): boolean {
  return n.class === "task" && n.type === "data" && n.enabled === true;
}

/** Prompts on the terminal (stderr, so that stdout keeps only the run's lines). */
function terminalAsk(signal: AbortSignal): { ask: Ask; close(): void } {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return { ask: (q) => rl.question(q, { signal }), close: () => rl.close() };
}

/** 128 + the signal's number, as a shell reports a command stopped by it: 130 for Ctrl-C (cmd/floe.ts aborts with the signal's name). */
function interruptedExitCode(signal: AbortSignal): number {
  const name: unknown = signal.reason instanceof Error ? signal.reason.message : signal.reason;
  const number = Object.entries(constants.signals).find(([k]) => k === name)?.[1] ?? constants.signals.SIGINT;
  return 128 + number;
}
