/** JSON Schemas of the API's bodies and answers (also the source of the OpenAPI document). */

export const errorSchema = {
  type: "object",
  required: ["error"],
  properties: { error: { type: "object", required: ["code", "message"], properties: { code: { type: "string" }, message: { type: "string" }, details: {} } } },
} as const;

const loose = (props: Record<string, unknown>, required: string[] = []) => ({ type: "object", properties: props, required, additionalProperties: true }) as const;

export const runRefSchema = loose({ flow: { type: "string" }, ver: { type: "integer" }, run: { type: "string" }, adoptedBy: { type: "string" }, execHost: { type: "string" } }, ["flow", "ver", "run", "adoptedBy"]);

export const runSummarySchema = loose(
  {
    ref: runRefSchema,
    state: { enum: ["pending", "active", "archived"] },
    result: { enum: ["good", "bad", "cancelled", "lost"] },
    reason: { type: "string" },
    waiting: { type: "string" },
    attempt: { type: "integer" },
    adoptedAt: { type: "number" },
    startedAt: { type: "number" },
    endedAt: { type: "number" },
    trigger: loose({ id: { type: "string" }, type: { type: "string" }, values: { type: "object", additionalProperties: true } }),
  },
  ["ref", "state", "attempt", "adoptedAt"],
);

export const artifactSchema = { type: "object", properties: { name: { type: "string" }, size: { type: "integer" }, sha256: { type: "string" } }, required: ["name", "size", "sha256"] } as const;

export const nodeStatusSchema = loose({ id: { type: "string" }, state: { type: "string" }, attempts: { type: "integer" }, runAttempt: { type: "integer" }, artifacts: { type: "array", items: artifactSchema } }, ["id", "state"]);

export const runDetailSchema = loose({ ...runSummarySchema.properties, name: { type: "string" }, nodes: { type: "array", items: nodeStatusSchema } }, ["ref", "state", "nodes"]);

export const logLineSchema = loose({ attempt: { type: "integer" }, seq: { type: "integer" }, at: { type: "number" }, text: { type: "string" }, stream: { type: "string" } }, ["attempt", "seq", "at", "text"]);

export const valuesSchema = { type: "object", additionalProperties: { type: ["string", "number", "boolean", "null"] }, maxProperties: 200 } as const;

export const runIdParam = { type: "object", properties: { id: { type: "string", minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9_-]+$" } }, required: ["id"] } as const;
export const flowIdParam = { type: "object", properties: { id: { type: "string", minLength: 1, maxLength: 128, pattern: "^[a-z0-9_][a-z0-9_-]*$" } }, required: ["id"] } as const;
export const nodeParams = {
  type: "object",
  properties: { id: runIdParam.properties.id, node: { type: "string", minLength: 1, maxLength: 128, pattern: "^[a-z0-9_][a-z0-9_-]*$" } },
  required: ["id", "node"],
} as const;

export const artifactParams = {
  type: "object",
  properties: { id: nodeParams.properties.id, node: nodeParams.properties.node, name: { type: "string", minLength: 1, maxLength: 255 } },
  required: ["id", "node", "name"],
} as const;
