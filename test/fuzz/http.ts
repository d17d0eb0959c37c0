/**
 * A raw HTTP client for the fuzz tests. fetch normalises paths (`../` disappears, `%2e%2e`
 * may too) and refuses odd headers; node:http sends the path and headers as given, so the
 * server sees what an attacker's client would send.
 */
import { request } from "node:http";

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** An event stream: answered 200 and then dropped by us after the headers. */
  readonly stream: boolean;
}

export interface RawRequest {
  readonly method: string;
  /** Sent as is: it may hold `..`, `%00`, Latin-1 bytes. */
  readonly path: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: Buffer;
  /** A request that takes longer fails the caller's check: a hang. */
  readonly timeoutMs?: number;
}

export function rawRequest(base: URL, r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const timeoutMs = r.timeoutMs ?? 20_000;
    const req = request({ host: base.hostname, port: base.port, method: r.method, path: r.path, headers: r.headers ?? {}, agent: false });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer to ${r.method} ${r.path.slice(0, 200)} within ${timeoutMs} ms`));
    }, timeoutMs);
    let answered: { status: number; headers: Record<string, string | string[] | undefined> } | undefined;
    req.on("error", (e) => {
      clearTimeout(timer);
      // The server may answer early (413, 414) and close while we still send: its answer counts.
      if (answered !== undefined) resolve({ ...answered, body: "", stream: false });
      else reject(e);
    });
    req.on("response", (res) => {
      answered = { status: res.statusCode ?? 0, headers: res.headers };
      const type = String(res.headers["content-type"] ?? "");
      if (res.statusCode === 200 && type.startsWith("text/event-stream")) {
        clearTimeout(timer);
        res.destroy();
        req.destroy();
        resolve({ status: 200, headers: res.headers, body: "", stream: true });
        return;
      }
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), stream: false });
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), stream: false });
      });
    });
    req.end(r.body);
  });
}

/** A line of a JS stack trace. */
export const STACK_FRAME = /\n\s+at .+[(:]\d+/;
