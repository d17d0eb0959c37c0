/**
 * The folders runs are made in are marked with ext4's "top of directory hierarchy"
 * attribute (hub/spread-folders.ts), so new run folders spread over the disk's block groups.
 * Checked with `lsattr` where the test's temp folder is on ext4; elsewhere the attribute
 * does not exist and only the folders' existence is checked.
 */
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { startHub, until } from "../helpers/hub.js";

/** lsattr's flags of a folder, or undefined where the file system has none. */
function attrs(dir: string): string | undefined {
  try {
    return execFileSync("lsattr", ["-d", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split(/\s+/)[0];
  } catch {
    return undefined;
  }
}

t.test("a flow version's pending/ and active/ and its workspaces folder are made and spread on first use", async (t) => {
  const h = await startHub(
    t,
    `
flows:
  - id: spread
    triggers: [{name: go, type: data}]
    tasks:
      - {name: a, type: exec, listen: trigger.good, opts: {cmd: "true"}}
      - {name: e, type: end, listen: task.a.good}
`,
  );
  const run = (await h.hub.trigger({ flow: "spread" })).ref.run;
  t.equal((await h.end(run)).result, "good");
  const dirs = [join(h.root, "floes", "spread", "1", "pending"), join(h.root, "floes", "spread", "1", "active"), join(h.root, "spaces", "spread")];
  for (const d of dirs) t.ok(statSync(d).isDirectory(), `${d} exists`);
  t.equal(statSync(join(h.root, "spaces", "spread")).mode & 0o777, 0o700, "the workspaces folder stays private");
  const probe = attrs(dirs[0] as string);
  if (probe === undefined) {
    t.comment("lsattr reports no attributes here (not ext2/3/4): the spreading is a no-op");
    return;
  }
  await until(() => dirs.every((d) => attrs(d)?.includes("T") === true), 10_000, "chattr +T on the three folders");
  t.pass("all three carry the T attribute");
});
