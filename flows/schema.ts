/**
 * JSON Schema (draft 2020-12) of the flow file format, generated from the key table in
 * spec.ts so that editors complete and check the same keys `floe validate` knows.
 */
import { MERGE_TYPES, TASK_TYPES, TRIGGER_TYPES } from "./model.js";
import { SPECS, type KeyKind, type SpecName } from "./spec.js";

type Json = { [k: string]: unknown };

const DURATION = { anyOf: [{ type: "string", pattern: "^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$" }, { type: "number", exclusiveMinimum: 0 }] };

const OPTS_DOC: Json = {
  type: "object",
  description: "Type-specific options. exec: cmd, shell, args, sub-dir, env. git-checkout: url, branch, hash, sub-dir, key-file. git-merge: url, branch, from-branch. fetch: url, checksum, checksum-algo, location. timer: duration. data: form. Triggers — data: form; timer: period; cron: cron, tz; poll-git: url, refs, exclude, period; git-push/webhook: url, refs, secret.",
  properties: {
    cmd: { type: "string", description: "exec: the command and its arguments (split on spaces unless args is given); $VAR is not expanded — use shell for that." },
    shell: { type: "string", description: "exec: a bash script line, run with bash -c in the task's environment." },
    args: { type: "array", items: { type: ["string", "number", "boolean"] }, description: "exec: arguments, passed as they are." },
    "sub-dir": { type: "string", description: "Run in (or check out into) this folder of the workspace." },
    env: { type: "array", items: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*=" }, description: "KEY=value entries, appended to the flow's env." },
    url: { type: "string", description: "git repository, download URL, or polled repository." },
    branch: { type: "string" },
    hash: { type: "string", description: "git-checkout: check out exactly this commit." },
    "from-branch": { type: "string", description: "git-merge: the branch merged into branch." },
    "key-file": { type: "string", description: "SSH key for git." },
    checksum: { type: "string", description: "fetch: hex digest, optionally followed by a file name." },
    "checksum-algo": { enum: ["sha256", "sha1", "md5"] },
    location: { type: "string", description: "fetch: where to put the file; relative to the workspace." },
    duration: { ...DURATION, description: "timer task: how long to wait." },
    period: { type: "integer", minimum: 1, description: "timer and poll-git triggers: seconds between fires." },
    cron: { type: "string", description: "cron trigger: five or six fields, e.g. */5 * * * *." },
    tz: { type: "string", description: "cron trigger: IANA time zone, e.g. Europe/London." },
    refs: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }], description: "poll-git/git-push: ref patterns to watch, e.g. refs/heads/*." },
    exclude: { type: "string", description: "poll-git: regular expression of refs to ignore." },
    "exclude-refs": { type: "string", description: "poll-git: floe's name for exclude." },
    secret: { type: "string", description: "git-push/webhook: the shared secret used to verify signatures." },
    form: {
      type: "object",
      description: "data trigger/task: the form people fill.",
      properties: {
        title: { type: "string" },
        fields: {
          type: "array",
          items: {
            type: "object",
            required: ["id"],
            properties: {
              id: { type: "string" },
              prompt: { type: "string" },
              type: { type: "string", description: "string, text, bool, int, number, select, …" },
              value: { description: "default value" },
              required: { type: "boolean", description: "default true" },
              options: { type: "array", items: { type: "string" } },
            },
          },
        },
      },
    },
  },
};

function kindSchema(k: KeyKind): Json {
  switch (k.t) {
    case "string":
      return { type: "string" };
    case "int":
      return { type: "integer", ...(k.min !== undefined ? { minimum: k.min } : {}) };
    case "bool":
      return { type: "boolean" };
    case "duration":
      return DURATION;
    case "enum":
      return { enum: [...k.values] };
    case "strings":
      return { type: "array", items: { type: "string" } };
    case "ints":
      return { type: "array", items: { type: "integer", minimum: 0, maximum: 255 } };
    case "map":
      return OPTS_DOC;
    case "object":
      return { $ref: `#/$defs/${k.of}` };
    case "list":
      return { type: "array", items: { $ref: `#/$defs/${k.of}` } };
    case "items":
      return { oneOf: [{ const: "artifacts" }, { type: "array", minItems: 1, items: { type: ["string", "number", "boolean"] } }] };
  }
}

function objectSchema(name: SpecName): Json {
  const keys = SPECS[name];
  const properties: Json = {};
  for (const [k, s] of Object.entries(keys)) properties[k] = { ...kindSchema(s.kind), description: s.doc };
  const required = Object.entries(keys).filter(([, s]) => s.required === true).map(([k]) => k);
  return { type: "object", properties, additionalProperties: false, ...(required.length ? { required } : {}) };
}

/** The schema of a host config (`kind: "config"`) or of a flow-file (`kind: "flow"`). */
export function flowSchema(kind: "config" | "flow"): Json {
  const defs: Json = {};
  for (const n of Object.keys(SPECS) as SpecName[]) defs[n] = objectSchema(n);
  const node = defs["node"] as Json;
  (node["properties"] as Json)["type"] = {
    enum: [...new Set([...TRIGGER_TYPES, ...TASK_TYPES, ...MERGE_TYPES])],
    description: SPECS.node["type"]?.doc,
  };
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: kind === "config" ? "https://floe.dev/schema/floe.schema.json" : "https://floe.dev/schema/floe-flow.schema.json",
    title: kind === "config" ? "floe host config (common + flows)" : "floe flow-file (one flow)",
    $ref: kind === "config" ? "#/$defs/config" : "#/$defs/flowFile",
    $defs: defs,
  };
}
