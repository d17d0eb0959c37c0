/** Flows: list, one flow with its graph and recent runs, and starting a run from a data trigger. */
import type { FastifyInstance } from "fastify";
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
}
