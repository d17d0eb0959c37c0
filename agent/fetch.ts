/**
 * The `fetch` node type (reference §2): download a file over http(s) into this host's
 * cache, check it, and put it at `location`. floe's bugs fixed:
 * - a connection failure is an `error` result, not a crash (§9.1);
 * - an unknown `checksum-algo` is an error, not a silently skipped check;
 * - every relative `location` is workspace-relative, not only `./x` (§9.25);
 * - the copy falls back from a hard link to a real copy across filesystems.
 *
 * Opts: `url` (http/https), `checksum` (hex, or `"<hex> <filename>"` as sha256sum writes
 * it), `checksum-algo` (sha256, sha1, md5; inferred from the checksum's length when
 * absent), `location` (default `workspace/<basename>`; a trailing `/` or an existing
 * directory gets the basename appended).
 *
 * Cache: `cacheDir/<sha256(url) prefix>-<basename>`, written through a `.part` file and
 * renamed, so a reader never sees half a file. It is reused only when a checksum is given
 * and the cached file matches it; without one every fetch downloads afresh.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, link, mkdir, rename, rm, stat } from "node:fs/promises";
import http from "node:http";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { TaskRequest, TaskResult, TaskRunner } from "./contract.js";
import { redactUrl } from "../store/redact-url.js";
import { abortReason, stringOpt, sysWriter } from "./task-util.js";
import { errorCode, errorMessage } from "../flows/errors.js";

const ALGO_HEX_LEN = { sha256: 64, sha1: 40, md5: 32 } as const;
type Algo = keyof typeof ALGO_HEX_LEN;
const MAX_REDIRECTS = 5;
const PROGRESS_MS = 1000;
/** A server that sends nothing for this long is given up on (the task timeout may be far away). */
const IDLE_MS = 60_000;
const UNTRUSTED = "(N.B. fetch without a checksum can not be trusted)";

interface Checksum {
  readonly algo: Algo;
  readonly hex: string;
}

type Download = { readonly hex: string; readonly bytes: number } | { readonly error: string } | { readonly aborted: string };

export const runFetch: TaskRunner = async (req) => {
  const sys = sysWriter(req);
  const fail = (error: string): TaskResult => ({ status: 1, error, outputs: {} });
  const rawUrl = stringOpt(req.opts, "url", "fetch");
  if (rawUrl === undefined) return fail("fetch needs opts url");
  if (typeof rawUrl === "object") return fail(rawUrl.error);
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return fail(`fetch opts.url ${JSON.stringify(redactUrl(rawUrl))} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return fail(`fetch opts.url must be http or https, not ${url.protocol}`);
  const want = checksumOpt(req.opts);
  if (want !== undefined && "error" in want) return fail(want.error);
  const name = baseName(url);
  const dest = await destination(req, name);
  if (typeof dest === "object") return fail(dest.error);

  const cached = path.join(req.cacheDir, `${createHash("sha256").update(url.href).digest("hex").slice(0, 16)}-${name}`);
  try {
    await mkdir(req.cacheDir, { recursive: true });
    if (want !== undefined && (await fileHash(cached, want.algo)) === want.hex) {
      sys(`using cached ${cached} (${want.algo} matches)`);
      return await place(cached, dest, sys);
    }
  } catch (e: unknown) {
    return fail(`fetch: ${errorMessage(e)}`);
  }

  if (want === undefined) sys(UNTRUSTED);
  sys(`downloading ${redactUrl(url.href)}`);
  const part = `${cached}.${randomBytes(6).toString("hex")}.part`;
  try {
    const got = await download(url, part, want?.algo ?? "sha256", req.signal, sys);
    if ("aborted" in got) {
      sys(`stopped: ${got.aborted}`);
      return { status: -1, reason: got.aborted, outputs: {} };
    }
    if ("error" in got) return fail(`download failed: ${got.error}`);
    if (want === undefined) sys(`sha256 ${got.hex}  ${name}`);
    else if (got.hex !== want.hex) return fail(`checksum mismatch (${want.algo}): expected ${want.hex}, got ${got.hex}`);
    else sys(`${want.algo} ok`);
    await rename(part, cached);
    return await place(cached, dest, sys);
  } catch (e: unknown) {
    return fail(`fetch: ${errorMessage(e)}`);
  } finally {
    await rm(part, { force: true });
  }
};

/** The checksum opts, validated; undefined when there is no checksum. */
function checksumOpt(opts: TaskRequest["opts"]): Checksum | { error: string } | undefined {
  const rawAlgo = stringOpt(opts, "checksum-algo", "fetch");
  if (typeof rawAlgo === "object") return rawAlgo;
  let algo: Algo | undefined;
  if (rawAlgo !== undefined) {
    const a = rawAlgo.trim().toLowerCase();
    if (!Object.hasOwn(ALGO_HEX_LEN, a)) return { error: `fetch opts.checksum-algo ${JSON.stringify(rawAlgo)} is not one of sha256, sha1, md5` };
    algo = a as Algo;
  }
  const raw = stringOpt(opts, "checksum", "fetch");
  if (typeof raw === "object") return raw;
  if (raw === undefined) return undefined;
  const hex = (raw.trim().split(/\s+/)[0] ?? "").toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex) || hex.length % 2 !== 0) return { error: `Error decoding hex checksum: ${JSON.stringify(hex)} is not hexadecimal` };
  if (algo === undefined) {
    algo = (Object.keys(ALGO_HEX_LEN) as Algo[]).find((a) => ALGO_HEX_LEN[a] === hex.length);
    if (algo === undefined) return { error: `fetch cannot tell the checksum algorithm from ${hex.length} hex digits: set opts.checksum-algo (sha256, sha1 or md5)` };
  } else if (ALGO_HEX_LEN[algo] !== hex.length) {
    return { error: `fetch opts.checksum has ${hex.length} hex digits; ${algo} needs ${ALGO_HEX_LEN[algo]}` };
  }
  return { algo, hex };
}

/** The file name the URL ends with, made safe to use as one; `download` when there is none. */
function baseName(url: URL): string {
  const last = url.pathname.split("/").pop() ?? "";
  let name: string;
  try {
    name = decodeURIComponent(last);
  } catch {
    name = last;
  }
  name = name.replace(/[/\\\x00-\x1f]/g, "_").slice(-200);
  return name === "" || name === "." || name === ".." ? "download" : name;
}

/** Where the file goes: see the module comment. Relative means workspace-relative. */
async function destination(req: TaskRequest, name: string): Promise<string | { error: string }> {
  const loc = stringOpt(req.opts, "location", "fetch");
  if (typeof loc === "object") return loc;
  if (loc === undefined) return path.join(req.workspace, name);
  const p = path.resolve(req.workspace, loc);
  if (loc.endsWith("/")) return path.join(p, name);
  try {
    if ((await stat(p)).isDirectory()) return path.join(p, name);
  } catch {
    // not there yet: it names the file
  }
  return p;
}

/** Hex digest of a file, or undefined when it does not exist. */
async function fileHash(file: string, algo: Algo): Promise<string | undefined> {
  const h = createHash(algo);
  try {
    await pipeline(createReadStream(file), h);
  } catch (e: unknown) {
    if (errorCode(e) === "ENOENT") return undefined;
    throw e;
  }
  return h.digest("hex");
}

/**
 * Hard link from the cache (no copy of a large file), or a copy when the link fails
 * (another filesystem, or a filesystem without links).
 */
async function place(cached: string, dest: string, sys: (t: string) => void): Promise<TaskResult> {
  await mkdir(path.dirname(dest), { recursive: true });
  await rm(dest, { force: true });
  try {
    await link(cached, dest);
  } catch {
    await copyFile(cached, dest);
  }
  sys(`saved ${dest} (${bytes((await stat(dest)).size)})`);
  return { status: 0, outputs: {} };
}

async function download(start: URL, part: string, algo: Algo, signal: AbortSignal, sys: (t: string) => void): Promise<Download> {
  let url = start;
  try {
    for (let hops = 0; ; hops++) {
      const res = await get(url, signal);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        res.resume();
        if (hops >= MAX_REDIRECTS) return { error: `more than ${MAX_REDIRECTS} redirects` };
        url = new URL(location, url);
        if (url.protocol !== "http:" && url.protocol !== "https:") return { error: `redirected to a ${url.protocol} URL` };
        sys(`redirected to ${redactUrl(url.href)}`);
        continue;
      }
      if (status < 200 || status >= 300) {
        res.resume();
        return { error: `${status} ${res.statusMessage ?? ""}`.trim() };
      }
      return await save(res, part, createHash(algo), signal, sys);
    }
  } catch (e: unknown) {
    if (signal.aborted) return { aborted: abortReason(signal) };
    return { error: errorMessage(e) };
  }
}

function get(url: URL, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : http;
    // identity: the checksum is of the file, not of a compressed transfer.
    const req = client.get(url, { signal, headers: { "user-agent": "floe", "accept-encoding": "identity" } }, resolve);
    req.setTimeout(IDLE_MS, () => req.destroy(new Error(`no data for ${IDLE_MS / 1000}s`)));
    req.on("error", reject);
  });
}

/** Streams the body into `part`, hashing and reporting progress on the way. */
async function save(res: IncomingMessage, part: string, hash: Hash, signal: AbortSignal, sys: (t: string) => void): Promise<Download> {
  const length = Number(res.headers["content-length"]);
  const total = Number.isFinite(length) && res.headers["content-length"] !== undefined ? length : undefined;
  let got = 0;
  let last = performance.now();
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      got += chunk.length;
      if (performance.now() - last >= PROGRESS_MS) {
        last = performance.now();
        sys(total === undefined ? `downloaded ${bytes(got)}` : `downloaded ${bytes(got)} of ${bytes(total)} (${Math.floor((got * 100) / total)}%)`);
      }
      done(null, chunk);
    },
  });
  await pipeline(res, meter, createWriteStream(part), { signal });
  if (total !== undefined && got !== total) return { error: `connection closed after ${got} of ${total} bytes` };
  return { hex: hash.digest("hex"), bytes: got };
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i] ?? ""}`;
}
