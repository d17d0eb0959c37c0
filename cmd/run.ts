/**
 * `floe run FILE [--flow ID] [--set key=value]...`: runs one flow once in the foreground,
 * printing every output line as `<time> [flow.node] text`; exit 0 when the run ends good.
 * This is how a person develops a flow.
 */
import { mkdtemp } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatDiagnostic } from "../flows/diagnostics.js";
import { validateHostConfig } from "../flows/load.js";
import { errorMessage, FloeError } from "../flows/errors.js";
import type { Out } from "./validate.js";
import { embeddedHub, makeLogger, shortHostname } from "./wiring.js";

export async function runCommand(args: readonly string[], io: Out, signal: AbortSignal): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        flow: { type: "string" },
        set: { type: "string", multiple: true },
        root: { type: "string" },
        "log-level": { type: "string", default: process.env["FLOE_LOG_LEVEL"] ?? "warn" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    io.err(`floe run: ${errorMessage(e)}`);
    return 2;
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0) {
    io.err("usage: floe run FILE [--flow=ID] [--set key=value]... [--root=DIR]");
    return 2;
  }
  const values: Record<string, string> = {};
  for (const s of parsed.values.set ?? []) {
    const eq = s.indexOf("=");
    if (eq <= 0) {
      io.err(`floe run: --set ${s}: expected key=value`);
      return 2;
    }
    values[s.slice(0, eq)] = s.slice(eq + 1);
  }
  const path = resolve(file);
  const res = await validateHostConfig(path);
  for (const d of res.diagnostics) if (d.severity === "error") io.err(formatDiagnostic(d));
  if (res.config === undefined) return 1;
  const flows = res.config.flows;
  const flowId = parsed.values.flow ?? (flows.length === 1 ? flows[0]?.id : undefined);
  if (flowId === undefined) {
    io.err(`floe run: ${path} has ${flows.length} flows; choose one with --flow (${flows.map((f) => f.id).join(", ")})`);
    return 2;
  }
  const flow = flows.find((f) => f.id === flowId);
  if (flow === undefined) {
    io.err(`floe run: no flow "${flowId}" in ${path} (flows: ${flows.map((f) => f.id).join(", ")})`);
    return 2;
  }
  const root = parsed.values.root !== undefined ? resolve(parsed.values.root) : await mkdtemp(join(tmpdir(), "floe-run-"));
  const hub = embeddedHub({
    config: res.config,
    configDir: dirname(path),
    root,
    host: shortHostname(),
    tags: flow.hostTags,
    slots: Math.max(1, cpus().length),
    log: makeLogger(parsed.values["log-level"] ?? "warn"),
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
    return end.result === "good" ? 0 : 1;
  } catch (e) {
    io.err(`floe run: ${e instanceof FloeError ? e.message : String(e)}`);
    return 1;
  } finally {
    await hub.stop(0).catch(() => undefined);
  }
}
