/** A real `floe serve` process for tests: started on a free port, talked to over HTTP, killed with -9. */
import { spawn, type ChildProcess } from "node:child_process";
import { floeBin } from "./paths.js";

export interface FloeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly api: string;
  readonly token: string;
  readonly output: () => string;
  /** JSON request with the admin token. */
  req(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: unknown; headers: Headers }>;
  kill9(): Promise<void>;
  stop(): Promise<number | null>;
}

/** `conf` undefined: no --conf flag (floe then looks for config.yml in `cwd`). */
/** `prefix`: a command that runs floe, e.g. `ip netns exec NS` (it must exec, keeping the pid). */
export async function startFloe(args: { conf: string | undefined; root: string; host?: string; tags?: string[]; extra?: string[]; env?: Record<string, string>; token?: string; cwd?: string; prefix?: readonly string[]; nodeArgs?: readonly string[] }): Promise<FloeProcess> {
  const token = args.token ?? "test-admin-token-0123456789";
  const [cmd, ...pre] = [...(args.prefix ?? []), process.execPath];
  const child = spawn(
    cmd as string,
    [...pre, ...(args.nodeArgs ?? []), floeBin, "serve", ...(args.conf !== undefined ? [`--conf=${args.conf}`] : []), `--root=${args.root}`, `--host=${args.host ?? "h1"}`, `--tags=${(args.tags ?? []).join(",")}`, "--bind=127.0.0.1:0", `--admin=${token}`, `--log-level=${process.env["FLOE_TEST_LOG"] ?? "warn"}`, "--stop-grace=2", ...(args.extra ?? [])],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...(args.env ?? {}) }, ...(args.cwd !== undefined ? { cwd: args.cwd } : {}) },
  );
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`floe did not start in 30s:\n${out}`)), 30_000);
    const check = () => {
      const m = /serving \d+ flow\(s\) at (https?:\/\/[^/\s]+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stderr?.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`floe exited with ${code} before it served:\n${out}`));
    });
  });
  const api = `${url}/build/api`;
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    url,
    api,
    token,
    output: () => out,
    async req(method, path, body, headers = {}) {
      const res = await fetch(`${api}${path}`, {
        method,
        headers: { "x-floe-auth": token, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (metrics): keep the text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async kill9() {
      child.kill("SIGKILL");
      await exited;
      // A process floe started may still hold its output pipes: they must not keep the test alive.
      child.stdout?.destroy();
      child.stderr?.destroy();
    },
    async stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
