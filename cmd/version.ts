/** floe's version: the one in package.json, found from wherever this file was loaded (cmd/ or dist/cmd/). */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function floeVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      if (pkg !== null && typeof pkg === "object" && "name" in pkg && pkg.name === "floe" && "version" in pkg && typeof pkg.version === "string") return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    const up = dirname(dir);
    if (up === dir) return "unknown";
    dir = up;
  }
}
