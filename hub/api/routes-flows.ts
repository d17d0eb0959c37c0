/** Flows: list, one flow with its graph and recent runs, and starting a run from a data trigger. */
import type { FastifyInstance } from "fastify";
import { FloeError } from "../errors.js";
import type { RunSummary } from "../types.js";
import { flowDefinition, flowSummary } from "./public-flow.js";
import { flowIdParam, runSummarySchema, valuesSchema } from "./schemas.js";
import type { ApiContext } from "./server.js";

export function registerFlowRoutes(api: FastifyInstance, ctx: ApiContext): void {
  // Counted, not read: in a cluster a flow's history is in Redis and may be long.
  const counts = async (flow: string) => {
    const [n, [last]] = await Promise.all([ctx.hub.countRuns(flow), ctx.hub.queryRuns({ flow, state: "archived", limit: 1 })]);
    return { ...n, ...(last?.result !== undefined ? { lastResult: last.result, lastEndedAt: last.endedAt } : {}) };
  };

  api.get("/flows", { schema: { summary: "List flows with their triggers and run counts" } }, async () => {
    const flows = ctx.hub.currentConfig.flows;
    return { flows: await Promise.all(flows.map(async (f) => ({ ...flowSummary(f), runs: await counts(f.id) }))) };
  });

  api.get<{ Params: { id: string }; Querystring: { ver?: number } }>(
    "/flows/:id",
    { schema: { summary: "One flow: definition, graph, recent runs", params: flowIdParam, querystring: { type: "object", properties: { ver: { type: "integer", minimum: 1 } } } } },
    async (req) => {
      const f = ctx.hub.findFlow(req.params.id, req.query.ver);
      const versions = ctx.hub.currentConfig.flows.filter((x) => x.id === f.id).map((x) => x.ver);
      return { flow: flowDefinition(f), versions, runs: await counts(f.id), recent: await ctx.hub.queryRuns({ flow: f.id, limit: 50 }) };
    },
  );

  api.post<{ Params: { id: string }; Body: { trigger?: string; ver?: number; values?: Record<string, unknown> } | undefined }>(
    "/flows/:id/runs",
    {
      config: { role: "operator" },
      schema: {
        summary: "Start a run from a data trigger",
        params: flowIdParam,
        body: { type: ["object", "null"], additionalProperties: false, properties: { trigger: { type: "string", maxLength: 128 }, ver: { type: "integer", minimum: 1 }, values: valuesSchema } },
        response: { 201: { type: "object", properties: { run: runSummarySchema }, required: ["run"] } },
      },
    },
    async (req, reply) => {
      const b = req.body ?? {};
      const run: RunSummary = await ctx.hub.trigger({
        flow: req.params.id,
        ...(b.ver !== undefined ? { ver: b.ver } : {}),
        ...(b.trigger !== undefined ? { trigger: b.trigger } : {}),
        values: b.values ?? {},
        by: req.caller?.user ?? "?",
        dataOnly: true,
      });
      return reply.code(201).send({ run });
    },
  );

  api.get<{ Params: { id: string } }>(
    "/flows/:id/tainted",
    { schema: { summary: "Archived runs made by a definition of the flow that has since changed, each with the first changed node it reached (re-run from there)", params: flowIdParam } },
    async (req) => {
      const f = ctx.hub.findFlow(req.params.id);
      return { runs: await ctx.hub.taintedRuns(f.id) };
    },
  );

  api.post<{ Params: { id: string }; Body: { runs?: string[] } | undefined }>(
    "/flows/:id/tainted/rerun",
    {
      config: { role: "operator" },
      schema: {
        summary: `Re-run tainted runs (the listed ones, or all; at most ${TAINTED_RERUN_MAX} a request) with the flow's current definition, each from its first changed node`,
        params: flowIdParam,
        body: { type: ["object", "null"], additionalProperties: false, properties: { runs: { type: "array", maxItems: TAINTED_RERUN_MAX, items: { type: "string", minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9_-]+$" } } } },
      },
    },
    async (req, reply) => {
      const f = ctx.hub.findFlow(req.params.id);
      const tainted = await ctx.hub.taintedRuns(f.id);
      const asked = req.body?.runs;
      const missing = (asked ?? []).filter((r) => !tainted.some((x) => x.run === r));
      if (missing.length > 0) throw new FloeError("E_NOT_FOUND", `not tainted runs of flow "${f.id}": ${missing.join(", ")}`, { details: { missing } });
      const todo = (asked === undefined ? tainted : tainted.filter((x) => asked.includes(x.run))).slice(0, TAINTED_RERUN_MAX);
      const runs: { of: string; run: RunSummary }[] = [];
      for (const x of todo) runs.push({ of: x.run, run: await ctx.hub.rerun(x.run, { by: req.caller?.user ?? "?", current: true, ...(x.from !== undefined ? { from: x.from } : {}) }) });
      return reply.code(201).send({ runs, left: tainted.length - todo.length });
    },
  );
}

/** Tainted runs re-run by one request: the rest wait for the next (each is a new pend). */
const TAINTED_RERUN_MAX = 50;
