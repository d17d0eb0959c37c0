/** `npm run schema`: writes the JSON Schemas shipped in schema/ from the key table. */
import { mkdirSync, writeFileSync } from "node:fs";
import { flowSchema } from "./schema.js";

mkdirSync("schema", { recursive: true });
writeFileSync("schema/floe.schema.json", JSON.stringify(flowSchema("config"), null, 2) + "\n");
writeFileSync("schema/floe-flow.schema.json", JSON.stringify(flowSchema("flow"), null, 2) + "\n");
