import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (works from test/ sources and from dist/test/). */
export const repoRoot = ((): string => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(resolve(d, "package.json"))) d = dirname(d);
  return d;
})();

/** floe's own example configs: ../shared/reference/floe-configs beside the project (or $FLOE_SHARED_DIR/reference/…). */
export const referenceConfigs = resolve(process.env["FLOE_SHARED_DIR"] ?? resolve(repoRoot, "..", "shared"), "reference", "floe-configs");

export function refConfig(name: string): string {
  return resolve(referenceConfigs, name);
}

/** The built CLI; tests that spawn it need `npm run build` first. */
export const floeBin = resolve(repoRoot, "dist", "cmd", "floe.js");
