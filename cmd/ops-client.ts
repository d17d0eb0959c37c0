/**
 * The operators' commands' way to a running host (DESIGN §6.1): the server's address
 * (`--server`, FLOE_SERVER, default http://127.0.0.1:8080), its token (`--token`,
 * FLOE_TOKEN, else `<root>/admin-token`), JSON requests, the live event stream, and every
 * failure turned into one sentence a person can act on.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { DEFAULT_BASE_URL } from "../flows/model.js";
import { errorMessage } from "../flows/errors.js";
import { stringFlag, UsageError, type Parsed } from "./flags.js";

export const DEFAULT_SERVER = "http://127.0.0.1:8080";

/** A request that failed: the command prints `message` and exits 1. */
export class OpsError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface Client {
  /** The API's base URL (server + base path). */
  readonly api: string;
  readonly server: string;
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Server-sent events of the API's /events, until `signal` aborts or the server closes. */
  events(query: string, onEvent: (type: string, data: unknown) => boolean | void, signal: AbortSignal): Promise<void>;
}

function tokenFromRoot(rootText: string | undefined): string | undefined {
  const root = rootText === undefined || rootText === "" ? resolve(homedir(), ".floe") : rootText.startsWith("~/") ? resolve(homedir(), rootText.slice(2)) : resolve(rootText);
  try {
    const t = readFileSync(resolve(root, "admin-token"), "utf8").trim();
    return t === "" ? undefined : t;
  } catch {
    return undefined;
  }
}

/** The client the flags describe. A server URL with a path names the API's base (common.base-url); without one, /build/api. */
export function clientFrom(p: Parsed): Client {
  const serverText = stringFlag(p, "server") || DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(serverText.includes("://") ? serverText : `http://${serverText}`);
  } catch {
    throw new UsageError(`--server=${serverText}: not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--server=${serverText}: expected an http:// or https:// URL`);
  const path = url.pathname.replace(/\/+$/, "");
  const server = url.origin;
  const api = `${server}${path === "" ? DEFAULT_BASE_URL : path}`;
  const token = stringFlag(p, "token") || tokenFromRoot(stringFlag(p, "root"));
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({ ...(token !== undefined ? { "x-floe-auth": token } : {}), ...extra });

  const fail = (e: unknown, method: string, path: string): never => {
    if (e instanceof OpsError) throw e;
    const cause: unknown = e instanceof Error ? e.cause : undefined;
    const code = cause !== null && typeof cause === "object" && "code" in cause && typeof cause.code === "string" ? cause.code : undefined;
    if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EHOSTUNREACH" || code === "ECONNRESET" || code === "EAI_AGAIN") {
      throw new OpsError(`can not reach floe at ${server} (${code}): is a host running there? Choose another with --server=URL or FLOE_SERVER`, code);
    }
    if (e instanceof Error && e.name === "TimeoutError") throw new OpsError(`floe at ${server} did not answer ${method} ${path} in time`, "ETIMEDOUT");
    // fetch says only "fetch failed"; why is in its cause (a bad port, a TLS problem).
    const why = cause instanceof Error ? `${cause.message}${code !== undefined ? ` (${code})` : ""}` : errorMessage(e);
    throw new OpsError(`can not talk to floe at ${server}: ${why}`, code);
  };

  const answerError = async (res: Response, method: string, path: string): Promise<never> => {
    let code: string | undefined;
    let message = `HTTP ${res.status}`;
    try {
      const j = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
      if (typeof j.error?.code === "string") code = j.error.code;
      if (typeof j.error?.message === "string") message = j.error.message;
    } catch {
      // not floe's JSON error: the status says it
    }
    if (res.status === 401) throw new OpsError(`floe at ${server} refused the token (${message}): give the right one with --token or FLOE_TOKEN${token === undefined ? "; none was given and there is no <root>/admin-token here" : ""}`, code, 401);
    if (res.status === 403) throw new OpsError(`floe at ${server} refused: ${message}`, code, 403);
    if (res.status === 404 && code === "E_NOT_FOUND" && message.startsWith("no route")) {
      throw new OpsError(`floe at ${server} does not offer ${method} ${path.replace(/\/runs\/[^/]+/, "/runs/:id")} (an older floe, or --server points at something else)`, code, 404);
    }
    throw new OpsError(message, code, res.status);
  };

  return {
    api,
    server,
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${api}${path}`, { method, headers: headers(body !== undefined ? { "content-type": "application/json" } : {}), ...(body !== undefined ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(30_000) });
      } catch (e) {
        return fail(e, method, path);
      }
      if (!res.ok) return answerError(res, method, path);
      return (await res.json()) as T;
    },
    async events(query, onEvent, signal) {
      let res: Response;
      try {
        res = await fetch(`${api}/events?${query}`, { headers: headers({ accept: "text/event-stream" }), signal });
      } catch (e) {
        if (signal.aborted) return;
        return fail(e, "GET", "/events");
      }
      if (!res.ok) return answerError(res, "GET", "/events");
      const decoder = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of res.body ?? []) {
          buf += decoder.decode(chunk as Uint8Array, { stream: true });
          for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let type = "message";
            const data: string[] = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) type = line.slice(7);
              else if (line.startsWith("data: ")) data.push(line.slice(6));
            }
            if (data.length === 0) continue;
            let parsed: unknown;
            try {
              parsed = JSON.parse(data.join("\n"));
            } catch {
              continue;
            }
            if (onEvent(type, parsed) === true) return;
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        fail(e, "GET", "/events");
      }
    },
  };
}
