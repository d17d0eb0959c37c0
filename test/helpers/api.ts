/** An embedded hub behind the real HTTP API on a real socket, for tests. */
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import type { Test } from "tap";
import { hashPassword } from "../../hub/api/passwords.js";
import { buildApi } from "../../hub/api/server.js";
import { registerDashboard } from "../../hub/dash/routes.js";
import { FileSessionStore } from "../../hub/api/sessions.js";
import { EventLog } from "../../hub/event-log.js";
import { Metrics } from "../../hub/metrics.js";
import type { Notifier } from "../../hub/notifier.js";
import { notificationsView } from "../../hub/notify-view.js";
import type { User } from "../../flows/model.js";
import { startHub, type TestHub } from "./hub.js";

export const ADMIN = "admin-token-for-tests-0123456789";

export interface TestApi extends TestHub {
  readonly app: FastifyInstance;
  readonly base: string;
  readonly api: string;
  call(method: string, path: string, o?: { token?: string | null; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> }): Promise<{ status: number; json: unknown; text: string; headers: Headers }>;
}

let hashes: Promise<Record<string, string>> | undefined;

/** Users viewer/operator/admin with passwords "<name>-password". */
export function testUsers(): Promise<User[]> {
  hashes ??= (async () => ({
    viewer: await hashPassword("viewer-password"),
    operator: await hashPassword("operator-password"),
    boss: await hashPassword("boss-password"),
  }))();
  return hashes.then((h) => [
    { name: "viewer", role: "viewer", passwordHash: h["viewer"] ?? "" },
    { name: "operator", role: "operator", passwordHash: h["operator"] ?? "" },
    { name: "boss", role: "admin", passwordHash: h["boss"] ?? "" },
  ]);
}

export async function startApi(t: Test, configText: string, o: { sessionTtlMs?: number; users?: readonly User[]; dashboard?: boolean; root?: string; notifier?: Pick<Notifier, "forRun"> } = {}): Promise<TestApi> {
  const h = await startHub(t, configText, o.root !== undefined ? { root: o.root } : {});
  const users = o.users ?? (await testUsers());
  const log = pino({ level: process.env["FLOE_TEST_LOG"] ?? "silent" });
  const events = new EventLog(h.hub.bus);
  const metrics = new Metrics(h.hub.bus);
  const app = await buildApi({
    hub: h.hub,
    log,
    adminToken: ADMIN,
    sessions: new FileSessionStore(join(h.root, "sessions.json"), o.sessionTtlMs),
    users: () => users,
    events,
    metrics,
    ...(o.notifier !== undefined ? { notifications: notificationsView(o.notifier, "h1", log) } : {}),
    ...(o.dashboard ? { extra: (app: FastifyInstance) => registerDashboard(app, { base: "/build/api" }) } : {}),
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.teardown(async () => {
    await app.close();
    events.close();
    metrics.close();
  });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  const base = `http://127.0.0.1:${port}`;
  const api = `${base}/build/api`;
  return {
    ...h,
    app,
    base,
    api,
    async call(method, path, c = {}) {
      const token = c.token === undefined ? ADMIN : c.token;
      const headers: Record<string, string> = { ...(token !== null ? { "x-floe-auth": token } : {}), ...(c.headers ?? {}) };
      let body: string | Buffer | undefined;
      if (c.raw !== undefined) body = c.raw;
      else if (c.body !== undefined) body = JSON.stringify(c.body);
      if (body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json";
      const res = await fetch(`${api}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text, headers: res.headers };
    },
  };
}
