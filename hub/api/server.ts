/**
 * The HTTP API of a host (DESIGN §6.3) on fastify: one error shape with stable codes,
 * schemas on what comes in and goes out, auth on every route but login, health and signed
 * webhooks, and an OpenAPI document built from the routes themselves.
 */
import type { NotificationsView } from "../notify-view.js";
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { Role, User } from "../../flows/model.js";
import { coerceError, errorCode, FloeError } from "../errors.js";
import type { EventLog } from "../event-log.js";
import type { Hub } from "../hub.js";
import type { Metrics } from "../metrics.js";
import { allows, Authenticator, LoginLimiter, type Caller } from "./auth.js";
import { registerFlowRoutes } from "./routes-flows.js";
import { registerMiscRoutes } from "./routes-misc.js";
import { registerRunRoutes } from "./routes-runs.js";
import { errorSchema } from "./schemas.js";
import type { SessionStore } from "./sessions.js";

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: Buffer;
    caller?: Caller;
  }
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
  }
  interface FastifyContextConfig {
    /** The least role a route needs; "public" routes need no credentials. */
    role?: Role | "public";
  }
}

export interface WebhookHandler {
  handleWebhook(flow: string, trigger: string, headers: Record<string, string | string[] | undefined>, rawBody: Buffer): Promise<{ status: number; body: unknown }>;
}

export interface ApiDeps {
  readonly hub: Hub;
  readonly log: Logger;
  readonly adminToken: string;
  readonly sessions: SessionStore;
  readonly users: () => readonly User[];
  readonly events: EventLog;
  readonly metrics: Metrics;
  /** The notifications of a run's end, for its detail (hub/notify-view.ts). */
  readonly notifications?: NotificationsView;
  readonly webhooks?: WebhookHandler;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  readonly bodyLimit?: number;
  /** Extra routes (the dashboard). */
  readonly extra?: (app: FastifyInstance) => void | Promise<void>;
}

export interface ApiContext extends ApiDeps {
  readonly auth: Authenticator;
  readonly limiter: LoginLimiter;
  readonly base: string;
  readonly secureCookie: boolean;
}

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const err = e instanceof FloeError ? e : new FloeError("E_INTERNAL", "internal error");
  return reply.code(err.status).type("application/json").send({ error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } });
}

function fromFastify(e: FastifyError): FloeError {
  if (e.validation !== undefined) return new FloeError("E_BAD_REQUEST", `${e.validationContext ?? "request"}${e.message.replace(/^(body|params|querystring|headers)/, "")}`);
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new FloeError("E_TOO_LARGE", "the request body is too large");
  if (e.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return new FloeError("E_BAD_REQUEST", "send JSON (Content-Type: application/json)");
  if (e.code === "FST_ERR_CTP_EMPTY_JSON_BODY") return new FloeError("E_BAD_REQUEST", "the JSON body is empty");
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return new FloeError("E_BAD_REQUEST", e.message);
  // The cluster state (Redis) or messaging (NATS) away: the caller may try again.
  if (errorCode(e) === "E_UNAVAILABLE") return new FloeError("E_UNAVAILABLE", e.message);
  return new FloeError("E_INTERNAL", "internal error");
}

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log,
    bodyLimit: deps.bodyLimit ?? 1 << 20,
    logController: new LogController({ disableRequestLogging: true }),
    // Event streams and long-polled logs never go idle: without this, close() would wait on
    // every open dashboard forever.
    forceCloseConnections: true,
    ...(deps.tls !== undefined ? { https: { cert: deps.tls.cert, key: deps.tls.key } } : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", allErrors: false, allowUnionTypes: true } },
    // Errors of the router itself (a bad %-escape, an over-long path segment) skip the error
    // handler: fastify's own answers had another shape and echoed the whole URL back.
    frameworkErrors: (e: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
      if (e.code === "FST_ERR_MAX_PARAM_LENGTH") return reply.code(414).type("application/json").send({ error: { code: "E_BAD_REQUEST", message: "a path segment is too long" } });
      if (e.code === "FST_ERR_BAD_URL") return sendError(reply, new FloeError("E_BAD_REQUEST", "the URL is not valid (a bad %-escape)"));
      return sendError(reply, e);
    },
    // Requests that are not valid HTTP (Content-Length with chunked encoding, bad header
    // bytes, headers too large) are answered by Node's parser; in floe's error shape too.
    clientErrorHandler: (e: NodeJS.ErrnoException, socket: Duplex) => {
      if (e.code === "ECONNRESET" || socket.destroyed) return;
      const [status, code, message] =
        e.code === "ERR_HTTP_REQUEST_TIMEOUT" ? [408, "E_BAD_REQUEST", "the request took too long to arrive"] : e.code === "HPE_HEADER_OVERFLOW" ? [431, "E_TOO_LARGE", "the request's headers are too large"] : [400, "E_BAD_REQUEST", "the request is not valid HTTP"];
      const body = JSON.stringify({ error: { code, message } });
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
      socket.destroy(e);
    },
  }) as unknown as FastifyInstance;
  const ctx: ApiContext = {
    ...deps,
    auth: new Authenticator(deps.adminToken, deps.sessions),
    limiter: new LoginLimiter(),
    base: deps.hub.currentConfig.common.baseUrl,
    secureCookie: deps.tls !== undefined,
  };

  // Keep the raw bytes: webhooks are verified over exactly what was sent.
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
    req.rawBody = body;
    if (body.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(body.toString("utf8")));
    } catch {
      done(new FloeError("E_BAD_REQUEST", "the body is not valid JSON"));
    }
  });

  const routes: { method: string; url: string; schema: unknown; role: string }[] = [];
  app.addHook("onRoute", (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) if (m !== "HEAD") routes.push({ method: m, url: r.url, schema: r.schema, role: r.config?.role ?? "viewer" });
  });

  app.addHook("onRequest", async (req) => {
    const role = req.routeOptions.config?.role ?? "viewer";
    if (role === "public" || req.routeOptions.url === undefined) return;
    const caller = await ctx.auth.caller(req.headers);
    if (!allows(caller, role)) throw new FloeError("E_FORBIDDEN", `role ${caller.role} may not do this (needs ${role})`);
    req.caller = caller;
  });

  app.setErrorHandler((e: FastifyError | FloeError, req, reply) => {
    const fe = e instanceof FloeError ? e : fromFastify(e);
    if (fe.status >= 500) req.log.error({ err: coerceError(e), url: req.url }, "request failed");
    return sendError(reply, fe);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new FloeError("E_NOT_FOUND", `no route ${req.method} ${req.url.split("?")[0] ?? ""}`)));

  await app.register(
    async (api) => {
      registerMiscRoutes(api, ctx);
      registerFlowRoutes(api, ctx);
      registerRunRoutes(api, ctx);
      api.get("/openapi.json", { config: { role: "public" } }, async () => openApi(ctx.base, routes));
    },
    { prefix: ctx.base },
  );
  if (deps.extra !== undefined) await deps.extra(app);
  return app;
}

function openApi(base: string, routes: readonly { method: string; url: string; schema: unknown; role: string }[]): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (!r.url.startsWith(base)) continue;
    const path = r.url.replace(/:([A-Za-z]+)/g, "{$1}");
    const s = (r.schema ?? {}) as { body?: unknown; params?: { properties?: Record<string, unknown> }; querystring?: { properties?: Record<string, unknown> }; response?: Record<string, unknown>; summary?: string };
    const parameters = [
      ...Object.entries(s.params?.properties ?? {}).map(([name, schema]) => ({ name, in: "path", required: true, schema })),
      ...Object.entries(s.querystring?.properties ?? {}).map(([name, schema]) => ({ name, in: "query", schema })),
    ];
    (paths[path] ??= {})[r.method.toLowerCase()] = {
      summary: s.summary ?? "",
      ...(r.role === "public" ? { security: [] } : { "x-floe-role": r.role }),
      ...(parameters.length ? { parameters } : {}),
      ...(s.body !== undefined ? { requestBody: { content: { "application/json": { schema: s.body } } } } : {}),
      responses: Object.fromEntries(Object.entries(s.response ?? { 200: {} }).map(([code, schema]) => [code, { description: code, content: { "application/json": { schema } } }])),
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "floe API", version: "1" },
    servers: [{ url: "/" }],
    components: {
      securitySchemes: { token: { type: "apiKey", in: "header", name: "X-Floe-Auth" }, bearer: { type: "http", scheme: "bearer" }, cookie: { type: "apiKey", in: "cookie", name: "floe-sesh" } },
      schemas: { Error: errorSchema },
    },
    security: [{ token: [] }, { bearer: [] }, { cookie: [] }],
    paths,
  };
}
