/** Login, hosts, health, metrics, the live event stream, webhooks and floe's /push/data. */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from "fastify";
import { FloeError } from "../errors.js";
import type { Watch } from "../../store/bus.js";
import type { RunEvent } from "../types.js";
import { COOKIE, tokenFrom, type Caller } from "./auth.js";
import { verifyPassword } from "./passwords.js";
import { runSummarySchema, valuesSchema } from "./schemas.js";
import type { ApiContext } from "./server.js";

export function registerMiscRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const cookie = (value: string, maxAgeS: number) =>
    `${COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${ctx.secureCookie ? "; Secure" : ""}`;

  api.post<{ Body: { user?: string; password?: string; token?: string } }>(
    "/login",
    {
      config: { role: "public" },
      schema: {
        summary: "Log in with a user of common.users, or trade an API token (the --admin one) for a session; sets the floe-sesh cookie",
        body: {
          type: "object",
          additionalProperties: false,
          properties: { user: { type: "string", minLength: 1, maxLength: 128 }, password: { type: "string", minLength: 1, maxLength: 1024 }, token: { type: "string", minLength: 1, maxLength: 1024 } },
          anyOf: [{ required: ["user", "password"] }, { required: ["token"] }],
        },
        response: { 200: { type: "object", properties: { token: { type: "string" }, user: { type: "string" }, role: { type: "string" } }, required: ["token", "user", "role"] } },
      },
    },
    async (req, reply) => {
      if (req.body.token !== undefined) return tokenLogin(req.body.token, req.ip, req.log, reply);
      const { user = "", password = "" } = req.body;
      const key = `${user}@${req.ip}`;
      ctx.limiter.check(key);
      const u = ctx.users().find((x) => x.name === user);
      // Verify even for unknown users so both answers take the same time.
      const ok = await verifyPassword(password, u?.passwordHash ?? "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
      if (u === undefined || !ok) {
        ctx.limiter.fail(key);
        req.log.warn({ user, ip: req.ip }, "failed login");
        throw new FloeError("E_UNAUTHORIZED", "wrong user name or password");
      }
      ctx.limiter.succeed(key);
      const { token, session } = await ctx.sessions.create(u.name, u.role);
      req.log.info({ user: u.name }, "login");
      reply.header("set-cookie", cookie(token, Math.floor((session.expires - Date.now()) / 1000)));
      return { token, user: u.name, role: u.role };
    },
  );

  // The dashboard can not send headers on its event stream, and `floe serve` tells people to
  // log in with the admin token: trade a valid token for a session cookie, so the token
  // itself never sits in a cookie and logout ends only that session.
  async function tokenLogin(token: string, ip: string, log: FastifyBaseLogger, reply: FastifyReply): Promise<{ token: string; user: string; role: string }> {
    const key = `token@${ip}`;
    ctx.limiter.check(key);
    let caller: Caller;
    try {
      caller = await ctx.auth.caller({ "x-floe-auth": token });
    } catch {
      ctx.limiter.fail(key);
      log.warn({ ip }, "failed token login");
      throw new FloeError("E_UNAUTHORIZED", "this token is not valid");
    }
    ctx.limiter.succeed(key);
    const { token: sesh, session } = await ctx.sessions.create(caller.user, caller.role);
    log.info({ user: caller.user }, "login with a token");
    reply.header("set-cookie", cookie(sesh, Math.floor((session.expires - Date.now()) / 1000)));
    return { token: sesh, user: caller.user, role: caller.role };
  }

  api.post("/logout", { config: { role: "viewer" }, schema: { summary: "End this session" } }, async (req, reply) => {
    const token = tokenFrom(req.headers);
    if (token !== undefined) await ctx.sessions.delete(token);
    reply.header("set-cookie", cookie("", 0));
    return { ok: true };
  });

  api.get("/whoami", { schema: { summary: "The caller's name and role" } }, async (req) => ({ user: req.caller?.user, role: req.caller?.role }));

  api.get("/hosts", { schema: { summary: "Hosts of the cluster" } }, async () => ({ hosts: await ctx.hub.hosts() }));

  api.get("/healthz", { config: { role: "public" }, schema: { summary: "Liveness" } }, async (_req, reply) => {
    const ok = ctx.hub.state === "running";
    return reply.code(ok ? 200 : 503).send({ ok, state: ctx.hub.state, host: ctx.hub.host });
  });

  api.get("/metrics", { schema: { summary: "Prometheus metrics" } }, async (_req, reply) => {
    return reply.type(ctx.metrics.contentType).send(await ctx.metrics.render(ctx.hub.tallyRuns()));
  });

  api.get<{ Querystring: { run?: string; flow?: string; attempt?: number; after?: number; logs?: boolean } }>(
    "/events",
    {
      schema: {
        summary: "Live run, node and log events (server-sent events); resume with Last-Event-ID; logs=false leaves out log lines, attempt=N the log lines of other run attempts. In a cluster, node events and log lines of a run executing on another host come with run= (or flow=): an unfiltered stream has the run-level events of every run",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { run: { type: "string", maxLength: 64 }, flow: { type: "string", maxLength: 128 }, attempt: { type: "integer", minimum: 1 }, after: { type: "integer", minimum: 0 }, logs: { type: "boolean", default: true } },
        },
      },
    },
    async (req, reply) => streamEvents(req.raw, reply, ctx, req.query, Number(req.headers["last-event-id"] ?? req.query.after ?? NaN)),
  );

  api.post<{ Params: { flow: string; trigger: string } }>(
    "/hooks/:flow/:trigger",
    { config: { role: "public" }, schema: { summary: "Webhooks (git-push from GitHub, Gitea, GitLab; generic), verified by signature", params: { type: "object", properties: { flow: { type: "string", maxLength: 128 }, trigger: { type: "string", maxLength: 128 } }, required: ["flow", "trigger"] } } },
    async (req, reply) => {
      if (ctx.webhooks === undefined) throw new FloeError("E_NOT_FOUND", "webhooks are not enabled on this host");
      const res = await ctx.webhooks.handleWebhook(req.params.flow, req.params.trigger, req.headers, req.rawBody ?? Buffer.alloc(0));
      return reply.code(res.status).send(res.body);
    },
  );

  api.post<{ Body: { Ref?: { ID?: string; Ver?: number }; Run?: string; Form?: { ID?: string; Values?: Record<string, unknown> } } }>(
    "/push/data",
    {
      config: { role: "operator" },
      schema: {
        summary: "floe's form of starting a run (no Run) or of data-node input (Run set)",
        body: {
          type: "object",
          properties: {
            Ref: { type: "object", properties: { ID: { type: "string", maxLength: 128 }, Ver: { type: "integer" } } },
            Run: { type: "string", maxLength: 64 },
            Form: { type: "object", properties: { ID: { type: "string", maxLength: 128 }, Values: valuesSchema } },
          },
        },
        response: { 200: { type: "object", properties: { Message: { type: "string" }, Payload: {} } }, 201: { type: "object", properties: { Message: { type: "string" }, Payload: { type: "object", properties: { run: runSummarySchema } } } } },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const values = b.Form?.Values ?? {};
      if (b.Run !== undefined && b.Run !== "") {
        if (b.Form?.ID === undefined) throw new FloeError("E_BAD_REQUEST", "Form.ID must name the data node");
        const node = await ctx.hub.submitData(b.Run, b.Form.ID, values, undefined, req.caller?.user);
        return { Message: "OK", Payload: { node } };
      }
      const flow = b.Ref?.ID;
      if (flow === undefined || flow === "") throw new FloeError("E_BAD_REQUEST", "Ref.ID must name the flow (floe started every flow on an empty Ref; floe here does not)");
      const run = await ctx.hub.trigger({
        flow,
        ...(b.Ref?.Ver ? { ver: b.Ref.Ver } : {}),
        ...(b.Form?.ID ? { trigger: b.Form.ID } : {}),
        values,
        by: req.caller?.user ?? "?",
        dataOnly: true,
      });
      return reply.code(201).send({ Message: "OK", Payload: { run } });
    },
  );
}

interface StreamQuery {
  readonly run?: string;
  readonly flow?: string;
  /** Log lines of this run attempt only (a requeued run's attempts each number their lines from 1). */
  readonly attempt?: number;
  readonly logs?: boolean;
}

function matches(ev: RunEvent, q: StreamQuery): boolean {
  // The dashboard follows every run but reads logs per node, on demand: it asks for no lines here.
  if (ev.type === "log" && q.logs === false) return false;
  if (ev.type === "log" && q.attempt !== undefined && ev.line.attempt !== q.attempt) return false;
  const ref = ev.type === "run" ? ev.summary.ref : ev.ref;
  if (q.run !== undefined && ref.run !== q.run) return false;
  if (q.flow !== undefined && ref.flow !== q.flow) return false;
  return true;
}

/** Runs one stream of a flow's runs watches at most (beyond, their lines come only if run here). */
const MAX_FLOW_WATCHES = 1000;

function streamEvents(raw: import("node:http").IncomingMessage, reply: FastifyReply, ctx: ApiContext, q: StreamQuery, lastId: number): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
  res.write(`retry: 2000\n: connected to ${ctx.hub.host}\n\n`);
  // In a cluster, node events and log lines of a run executing elsewhere reach this host only
  // while it is watched: a stream of one run watches it; a stream of a flow watches each of its
  // runs from the first news of it until it ends; an unfiltered stream has the run-level
  // events of every run, and the rest of the runs executing here or watched by someone else.
  const watches = new Map<string, Watch>();
  let closed = false;
  const watch = (run: string): Watch | undefined => {
    if (closed || watches.has(run) || watches.size >= MAX_FLOW_WATCHES) return undefined;
    const w = ctx.events.watch(run);
    watches.set(run, w);
    return w;
  };
  const unwatch = (run: string): void => {
    watches.get(run)?.stop();
    watches.delete(run);
  };
  const send = (id: number, ev: RunEvent) => {
    if (q.run === undefined && q.flow !== undefined && ev.type === "run" && ev.summary.ref.flow === q.flow) {
      if (ev.summary.state === "archived") unwatch(ev.summary.ref.run);
      else watch(ev.summary.ref.run);
    }
    if (matches(ev, q)) res.write(`id: ${id}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`);
  };
  let off = (): void => undefined;
  let ping: NodeJS.Timeout | undefined;
  const close = () => {
    closed = true;
    off();
    clearInterval(ping);
    for (const w of watches.values()) w.stop();
    watches.clear();
  };
  raw.once("close", close);
  res.once("close", close);
  const first = q.run !== undefined ? watch(q.run) : undefined;
  // What comes before hello (or the resumed events) is what the client can count on.
  void (first?.ready ?? Promise.resolve()).then(() => {
    if (closed) return;
    if (Number.isFinite(lastId)) {
      const { events, gap } = ctx.events.since(lastId);
      if (gap) res.write(`event: gap\ndata: {"v":1,"type":"gap"}\n\n`);
      for (const e of events) send(e.id, e.ev);
    } else {
      res.write(`event: hello\nid: ${ctx.events.lastId}\ndata: {"v":1,"type":"hello","host":${JSON.stringify(ctx.hub.host)}}\n\n`);
    }
    off = ctx.events.listen((e) => send(e.id, e.ev));
    ping = setInterval(() => res.write(": ping\n\n"), 15_000);
  });
}
