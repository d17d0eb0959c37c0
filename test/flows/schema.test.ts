/** The shipped JSON Schema is the one generated from the key table, and accepts floe's configs. */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { load } from "js-yaml";
import t from "tap";
import { flowSchema } from "../../flows/schema.js";
import { referenceConfigs, repoRoot } from "../helpers/paths.js";

const shipped = (name: string): unknown => JSON.parse(readFileSync(resolve(repoRoot, "schema", name), "utf8"));

t.test("schema/ matches the generator (run `npm run schema` after changing flows/spec.ts)", async (t) => {
  t.same(shipped("floe.schema.json"), flowSchema("config"));
  t.same(shipped("floe-flow.schema.json"), flowSchema("flow"));
});

t.test("reference configs satisfy the schema, except floe's unknown keys", async (t) => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const config = ajv.compile(flowSchema("config"));
  const flow = ajv.compile(flowSchema("flow"));
  for (const name of readdirSync(referenceConfigs).filter((n) => n.endsWith(".yml"))) {
    const doc = load(readFileSync(resolve(referenceConfigs, name), "utf8")) as Record<string, unknown>;
    const isFlow = !("flows" in doc) && !("common" in doc);
    const validate = isFlow ? flow : config;
    validate(doc);
    const problems = (validate.errors ?? []).filter((e) => !(e.keyword === "additionalProperties" && e.params["additionalProperty"] === "subs"));
    t.same(problems, [], name);
  }
});

t.test("the schema rejects what validate rejects", async (t) => {
  const ajv = new Ajv2020({ strict: false });
  const config = ajv.compile(flowSchema("config"));
  t.notOk(config({ flows: [{ id: "x", ver: "one" }] }), "ver must be an integer");
  t.notOk(config({ flows: [{ id: "x", tasks: [{ name: "a", type: "exec", good: [-1] }] }] }), "good codes are 0..255");
  t.notOk(config({ flows: [{ id: "x", "queue-strategy": "drop" }] }), "queue-strategy enum");
  t.ok(config({ flows: [{ id: "x", timeout: "15m", tasks: [{ name: "a", type: "exec", listen: "trigger.good", retries: { max: 2, backoff: "2s" } }] }] }));
});
