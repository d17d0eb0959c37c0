/**
 * Reading flow files from disk: size and encoding checks before YAML sees the bytes, and
 * the local flow-files a config refers to, checked along with it.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { Diagnostics, LineIndex, type Diagnostic } from "./diagnostics.js";
import { flowFileKind, readFlowFile, FlowFileError } from "./flow-file.js";
import type { Config } from "./model.js";
import { looksLikeFlowFile, parseConfig, parseFlowText, type ConfigResult } from "./parse.js";
import { parseYaml } from "./yaml-source.js";
import { errorCode, errorMessage } from "./errors.js";

/** Flow files are small; a bigger one is a mistake (or an attack), not a flow. */
export const MAX_FILE_BYTES = 4 << 20;

/** Decodes bytes as UTF-8, or reports where they stop being UTF-8. */
export function decodeText(bytes: Uint8Array, file: string): { text?: string; diagnostics: Diagnostic[] } {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    const nul = text.indexOf("\u0000");
    if (nul >= 0) {
      const d = new Diagnostics(file, new LineIndex(text));
      d.error(nul, "the file contains a NUL byte; it is binary, not YAML");
      return { diagnostics: d.list };
    }
    return { text, diagnostics: [] };
  } catch {
    // Find the first bad byte, in one pass: the lenient decoder turns each bad sequence into
    // U+FFFD; the first U+FFFD that was not written as EF BF BD in the file marks it.
    const loose = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
    let byte = 0;
    let done = 0;
    let at = loose.indexOf("\uFFFD");
    while (at >= 0) {
      byte += Buffer.byteLength(loose.slice(done, at));
      if (bytes[byte] !== 0xef || bytes[byte + 1] !== 0xbf || bytes[byte + 2] !== 0xbd) break;
      byte += 3;
      done = at + 1;
      at = loose.indexOf("\uFFFD", done);
    }
    const bom = loose.startsWith("\uFEFF") ? 1 : 0;
    const prefix = at < 0 ? "" : loose.slice(bom, at);
    const d = new Diagnostics(file, new LineIndex(prefix));
    d.error(prefix.length, `the file is not valid UTF-8 (bad byte at offset ${byte})`);
    return { diagnostics: d.list };
  }
}

async function readText(path: string): Promise<{ text?: string; diagnostics: Diagnostic[] }> {
  const d = new Diagnostics(path, new LineIndex(""));
  try {
    const st = await stat(path);
    if (!st.isFile()) {
      d.error(-1, st.isDirectory() ? "is a directory, not a flow file" : "not a regular file");
      return { diagnostics: d.list };
    }
    if (st.size > MAX_FILE_BYTES) {
      d.error(-1, `the file is ${st.size} bytes; flow files may be at most ${MAX_FILE_BYTES} bytes`);
      return { diagnostics: d.list };
    }
    return decodeText(await readFile(path), path);
  } catch (e) {
    d.error(-1, `can not read the file: ${readProblem(e)}`);
    return { diagnostics: d.list };
  }
}

function readProblem(e: unknown): string {
  const code = errorCode(e);
  if (code === "ENOENT") return "no such file (ENOENT)";
  if (code === "EACCES" || code === "EPERM") return `permission denied (${code})`;
  return code ?? errorMessage(e);
}

/** Loads and validates a host config file. */
export async function loadConfigFile(path: string): Promise<ConfigResult> {
  const { text, diagnostics } = await readText(path);
  if (text === undefined) return { diagnostics };
  return parseConfig(text, path);
}

/**
 * Validates a config and the local flow-files it names. Remote flow-files (http, git) are
 * fetched only when the flow is triggered, so they are not checked here.
 */
export async function validateFile(path: string): Promise<{ config?: Config; diagnostics: Diagnostic[] }> {
  const { text, diagnostics } = await readText(path);
  if (text === undefined) return { diagnostics };
  if (looksLikeFlowFile(text, path)) return { diagnostics: [...parseFlowText(text, path).diagnostics] };
  const res = parseConfig(text, path);
  const all: Diagnostic[] = [...res.diagnostics];
  if (res.config === undefined) return { diagnostics: all };
  let failed = false;
  for (const [i, flow] of res.config.flows.entries()) {
    if (flow.flowFile === undefined || flowFileKind(flow.flowFile) !== "local") continue;
    try {
      const { text, name } = await readFlowFile(flow.flowFile, { baseDir: dirname(path) });
      const parsed = parseFlowText(text, name);
      all.push(...parsed.diagnostics);
      if (parsed.flow === undefined) failed = true;
    } catch (e) {
      const d = new Diagnostics(path, new LineIndex(text));
      d.warn(flowFilePlace(text, path, i), `flow ${flow.id}: ${e instanceof FlowFileError ? e.message : String(e)}; it will be loaded when the flow is triggered`);
      all.push(...d.list);
    }
  }
  return failed ? { diagnostics: all } : { config: res.config, diagnostics: all };
}

/**
 * validateFile for commands that need a host config (serve, its SIGHUP reload, run). A
 * flow-file on its own validates without errors but holds no config; without an error of
 * its own, those commands refused it saying only "not valid", with nothing located.
 */
export async function validateHostConfig(path: string): Promise<{ config?: Config; diagnostics: Diagnostic[] }> {
  const res = await validateFile(path);
  if (res.config !== undefined || res.diagnostics.some((d) => d.severity === "error")) return res;
  const d = new Diagnostics(path, new LineIndex(""));
  d.error(-1, "this file holds a single flow (a flow-file), not a host config: list it under flows: in a config (or name it there with flow-file:)");
  return { diagnostics: [...res.diagnostics, ...d.list] };
}

/** Where flows[i]'s flow-file was written in a config that parsed without errors. */
function flowFilePlace(text: string, file: string, i: number): number {
  const { root } = parseYaml(text, file);
  const flows = root?.kind === "map" ? root.pairs.find((p) => p.key.value === "flows")?.value : undefined;
  const flow = flows?.kind === "seq" ? flows.items[i] : undefined;
  return (flow?.kind === "map" ? flow.pairs.find((p) => p.key.value === "flow-file")?.value.pos : undefined) ?? -1;
}
