/**
 * `floe run FILE [--flow ID] [--set key=value]...`: runs one flow once in the foreground,
 * printing every output line as `<time> [flow.node] text`; exit 0 when the run ends good.
 * This is how a person develops a flow.
 */
import { mkdir, mkdtemp } from "node:fs/promises";
import { constants, cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { formatDiagnostic } from "../flows/diagnostics.js";
import { validateHostConfig } from "../flows/load.js";
import { FloeError } from "../hub/errors.js";
import { listFlag, stringFlag, UsageError, type Parsed } from "./flags.js";
import { lockRoot, RootInUse, type RootLock } from "./root-lock.js";
import type { Out } from "./validate.js";
import { embeddedHub, makeLogger, shortHostname } from "./wiring.js";

export async function runCommand(flags: Parsed, io: Out, signal: AbortSignal): Promise<number> {
  const [file, ...extra] = flags.positionals;
  if (file === undefined || extra.length > 0) throw new UsageError(file === undefined ? "which flow file? (FILE is missing)" : `one FILE only (also given: ${extra.join(" ")})`);
  const values: Record<string, string> = {};
  for (const s of listFlag(flags, "set")) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UsageError(`--set ${s}: expected key=value`);
    values[s.slice(0, eq)] = s.slice(eq + 1);
  }
  const path = resolve(file);
  const res = await validateHostConfig(path);
  for (const d of res.diagnostics) if (d.severity === "error") io.err(formatDiagnostic(d));
  if (res.config === undefined) return 1;
  const flows = res.config.flows;
  const flowId = stringFlag(flags, "flow") ?? (flows.length === 1 ? flows[0]?.id : undefined);
  if (flowId === undefined) {
    io.err(`floe run: ${path} has ${flows.length} flows; choose one with --flow (${flows.map((f) => f.id).join(", ")})`);
    return 2;
  }
  const flow = flows.find((f) => f.id === flowId);
  if (flow === undefined) {
    io.err(`floe run: no flow "${flowId}" in ${path} (flows: ${flows.map((f) => f.id).join(", ")})`);
    return 2;
  }
  const rootFlag = stringFlag(flags, "root");
  const root = rootFlag !== undefined ? resolve(rootFlag) : await mkdtemp(join(tmpdir(), "floe-run-"));
  await mkdir(root, { recursive: true });
  let lock: RootLock;
  try {
    lock = await lockRoot(root);
  } catch (e) {
    if (!(e instanceof RootInUse)) throw e;
    io.err(`floe run: ${e.message}; nothing started`);
    return 1;
  }
  const hub = embeddedHub({
    config: res.config,
    configDir: dirname(path),
    root,
    host: shortHostname(),
    tags: flow.hostTags,
    slots: Math.max(1, cpus().length),
    log: makeLogger(stringFlag(flags, "log-level") ?? "warn"),
    console: (line) => io.out(line),
  });
  await hub.start();
  try {
    const run = await hub.trigger({ flow: flow.id, ver: flow.ver, values, anyTrigger: true });
    io.err(`floe run: run ${run.ref.run} of ${flow.id} (ver ${flow.ver}); workspace ${hub.workspaceForRun(run.ref.run)}`);
    const onAbort = () => void hub.cancel(run.ref.run, "an interrupt (Ctrl-C)").catch(() => undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    const end = await hub.waitForEnd(run.ref.run);
    signal.removeEventListener("abort", onAbort);
    io.err(`floe run: run ${end.ref.run} ended ${end.result ?? "?"}${end.reason ? `: ${end.reason}` : ""}`);
    if (signal.aborted) return interruptedExitCode(signal);
    return end.result === "good" ? 0 : 1;
  } catch (e) {
    io.err(`floe run: ${e instanceof FloeError ? e.message : String(e)}`);
    return 1;
  } finally {
    await hub.stop(0).catch(() => undefined);
    await lock.release();
  }
}

/** 128 + the signal's number, as a shell reports a command stopped by it: 130 for Ctrl-C (cmd/floe.ts aborts with the signal's name). */
function interruptedExitCode(signal: AbortSignal): number {
  const name: unknown = signal.reason instanceof Error ? signal.reason.message : signal.reason;
  const number = Object.entries(constants.signals).find(([k]) => k === name)?.[1] ?? constants.signals.SIGINT;
  return 128 + number;
}
