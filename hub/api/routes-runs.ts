/** Runs: list, one run, node logs (following live runs), artifacts, data-node input, cancel. */
import { createReadStream } from "node:fs";
import type { FastifyInstance } from "fastify";
import { FloeError } from "../errors.js";
import type { LogPage } from "../queries.js";
import type { LogLine } from "../types.js";
import { artifactParams, logLineSchema, nodeParams, runDetailSchema, runIdParam, runSummarySchema, valuesSchema } from "./schemas.js";
import type { ApiContext } from "./server.js";

export function registerRunRoutes(api: FastifyInstance, ctx: ApiContext): void {
  api.get<{ Querystring: { flow?: string; state?: "pending" | "active" | "archived"; limit?: number; before?: string } }>(
    "/runs",
    {
      schema: {
        summary: "Run summaries, newest first",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            flow: { type: "string", maxLength: 128 },
            state: { enum: ["pending", "active", "archived"] },
            limit: { type: "integer", minimum: 1, maximum: 1000, default: 50 },
            before: { type: "string", maxLength: 64 },
          },
        },
        response: { 200: { type: "object", properties: { runs: { type: "array", items: runSummarySchema } }, required: ["runs"] } },
      },
    },
    async (req) => ({ runs: await ctx.hub.queryRuns(req.query) }),
  );

  api.get<{ Params: { id: string } }>("/runs/:id", { schema: { summary: "One run with its nodes, and the notifications this host sent of its end", params: runIdParam, response: { 200: runDetailSchema } } }, async (req) => {
    const run = await ctx.hub.getRun(req.params.id);
    const count = ctx.notifications !== undefined && run.state === "archived" ? ctx.hub.flowOfRun(run)?.notify?.length ?? 0 : 0;
    if (count === 0 || ctx.notifications === undefined) return run;
    const notifications = await ctx.notifications(run.ref.run, count, run.ref.execHost);
    return notifications.length > 0 ? { ...run, notifications } : run;
  });

  api.get<{ Params: { id: string; node: string }; Querystring: { attempt?: number; after: number; limit: number; wait: number } }>(
    "/runs/:id/nodes/:node/log",
    {
      schema: {
        summary: "Output lines of a node in one run attempt (the latest unless attempt is given) after a line number; with wait, holds the request until lines arrive",
        params: nodeParams,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            attempt: { type: "integer", minimum: 1 },
            after: { type: "integer", minimum: 0, default: 0 },
            limit: { type: "integer", minimum: 1, maximum: 10000, default: 1000 },
            wait: { type: "integer", minimum: 0, maximum: 60000, default: 0 },
          },
        },
        response: {
          200: {
            type: "object",
            properties: { lines: { type: "array", items: logLineSchema }, attempt: { type: "integer" }, attempts: { type: "array", items: { type: "integer" } }, more: { type: "boolean" }, live: { type: "boolean" } },
            required: ["lines", "attempt", "attempts"],
          },
        },
      },
    },
    async (req) => {
      let res: LogPage;
      const live = (r: LogPage): boolean => r.state !== "archived" && r.attempt === r.attempts.at(-1);
      const { id, node } = req.params;
      const { after, limit, wait } = req.query;
      // A run executing on another host: its lines reach this one only while it is watched.
      // The watch and the listener come before the first read, so no line slips between them.
      const watch = wait > 0 ? ctx.events.watch(id) : undefined;
      try {
        await watch?.ready;
        let attempt: number | undefined;
        let woken = false;
        let wake = (): void => undefined;
        const off = ctx.events.listen(({ ev }) => {
          const hit =
            (ev.type === "log" && ev.ref.run === id && ev.node === node && (attempt === undefined || ev.line.attempt === attempt)) ||
            (ev.type === "run" && ev.summary.ref.run === id && (ev.summary.state === "archived" || (attempt !== undefined && ev.summary.attempt !== attempt)));
          if (!hit) return;
          woken = true;
          wake();
        });
        try {
          // Pinned after the first read: a requeue while this request waits must not switch it to the new attempt.
          res = await ctx.hub.readLog(id, node, { ...(req.query.attempt !== undefined ? { attempt: req.query.attempt } : {}), after, limit: limit + 1 });
          attempt = res.attempt;
          if (res.lines.length === 0 && wait > 0 && live(res)) {
            // Long poll: wait for a line of this node in this attempt, for the run to end, or for it to be requeued.
            if (!woken) {
              await new Promise<void>((resolve) => {
                const timer = setTimeout(done, wait);
                wake = done;
                req.raw.once("close", done);
                function done(): void {
                  clearTimeout(timer);
                  req.raw.off("close", done);
                  resolve();
                }
              });
            }
            res = await ctx.hub.readLog(id, node, { attempt, after, limit: limit + 1 });
          }
        } finally {
          off();
        }
      } finally {
        watch?.stop();
      }
      const lines: LogLine[] = res.lines.slice(0, limit);
      return { lines, attempt: res.attempt, attempts: res.attempts, more: res.lines.length > limit, live: live(res) };
    },
  );

  api.get<{ Params: { id: string; node: string; name: string } }>(
    "/runs/:id/nodes/:node/artifacts/:name",
    { schema: { summary: "An artifact's bytes (from any host of the cluster); its ETag is its SHA-256", params: artifactParams } },
    async (req, reply) => {
      const { ref, path } = await ctx.hub.artifact(req.params.id, req.params.node, req.params.name);
      const etag = `"${ref.sha256}"`;
      reply.header("etag", etag).header("cache-control", "private, max-age=31536000, immutable");
      if (req.headers["if-none-match"] === etag) return reply.code(304).send();
      // RFC 6266: an ASCII fallback, and the exact name percent-encoded.
      const ascii = ref.name.replace(/[^\x20-\x7e]|["\\]/g, "_");
      return reply
        .header("content-type", "application/octet-stream")
        .header("content-length", String(ref.size))
        .header("content-disposition", `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(ref.name)}`)
        .header("x-content-type-options", "nosniff")
        .send(createReadStream(path));
    },
  );

  api.post<{ Params: { id: string; node: string }; Body: { values?: Record<string, unknown>; reject?: string } }>(
    "/runs/:id/nodes/:node/data",
    {
      config: { role: "operator" },
      schema: {
        summary: "Input for a waiting data node: values accumulate; reject ends it bad",
        params: nodeParams,
        body: { type: "object", additionalProperties: false, properties: { values: valuesSchema, reject: { type: "string", maxLength: 2000 } } },
      },
    },
    async (req) => {
      const b = req.body;
      if (b.values === undefined && b.reject === undefined) throw new FloeError("E_BAD_REQUEST", "send values, or reject with a reason");
      return { node: await ctx.hub.submitData(req.params.id, req.params.node, b.values ?? {}, b.reject, req.caller?.user) };
    },
  );

  api.post<{ Params: { id: string } }>(
    "/runs/:id/cancel",
    { config: { role: "operator" }, schema: { summary: "Cancel a pending or active run", params: runIdParam, response: { 200: { type: "object", properties: { run: runSummarySchema } } } } },
    async (req) => ({ run: await ctx.hub.cancel(req.params.id, req.caller?.user ?? "?") }),
  );

  for (const verb of ["pause", "resume"] as const) {
    api.post<{ Params: { id: string } }>(
      `/runs/:id/${verb}`,
      {
        config: { role: "operator" },
        schema: {
          summary: verb === "pause" ? "Pause an active run: it starts no new task (running ones finish) and keeps its slot and locks" : "Resume a paused run: the tasks it held start",
          params: runIdParam,
          response: { 200: { type: "object", properties: { run: runSummarySchema } } },
        },
      },
      async (req) => ({ run: await (verb === "pause" ? ctx.hub.pause : ctx.hub.resume)(req.params.id, req.caller?.user ?? "?") }),
    );
  }

  api.post<{ Params: { id: string }; Body: { from?: string; failed?: boolean } | undefined }>(
    "/runs/:id/rerun",
    {
      config: { role: "operator" },
      schema: {
        summary: "Re-run an ended run with its flow snapshot and trigger values: from the start, from a node (the nodes leading to it are replayed, not executed), or from the first node that failed",
        params: runIdParam,
        body: { type: ["object", "null"], additionalProperties: false, properties: { from: nodeParams.properties.node, failed: { type: "boolean" } } },
        response: { 201: { type: "object", properties: { run: runSummarySchema } } },
      },
    },
    async (req, reply) => {
      const b = req.body ?? {};
      if (b.from !== undefined && b.failed === true) throw new FloeError("E_BAD_REQUEST", "send from, or failed: true, not both");
      const run = await ctx.hub.rerun(req.params.id, { by: req.caller?.user ?? "?", ...(b.from !== undefined ? { from: b.from } : {}), ...(b.failed === true ? { failed: true } : {}) });
      return reply.code(201).send({ run });
    },
  );
}
