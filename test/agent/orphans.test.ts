import { spawn } from "node:child_process";
import t from "tap";
import { killOrphanGroup } from "../../agent/orphans.js";
import { alive, waitFor } from "./helpers.js";

/** A detached group like a task's: a shell leader with a sleeping child. */
function group(t: { teardown: (f: () => void) => void }, runId: string): number {
  const child = spawn("sh", ["-c", "sleep 1000 & wait"], {
    detached: true,
    stdio: "ignore",
    env: { ...process.env, FLOE_RUN_ID: runId },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("spawn failed");
  t.teardown(() => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  });
  return pid;
}

t.test("kills a group started for the run", async (t) => {
  const pgid = group(t, "run-1");
  t.equal(await killOrphanGroup(pgid, "run-1"), true);
  await waitFor("group gone", () => !alive(pgid));
});

t.test("refuses a group whose environment names another run", async (t) => {
  const pgid = group(t, "run-other");
  t.equal(await killOrphanGroup(pgid, "run-1"), false);
  t.ok(alive(pgid), "still running");
  t.equal(await killOrphanGroup(pgid, "run-othe"), false, "the whole entry must match");
});

t.test("nothing to kill", async (t) => {
  t.equal(await killOrphanGroup(0, "run-1"), false);
  t.equal(await killOrphanGroup(1, "run-1"), false);
  t.equal(await killOrphanGroup(process.pid, "run-1"), false, "our own env has no FLOE_RUN_ID");
  t.equal(await killOrphanGroup(4_000_000, "run-1"), false, "no such group");
});

t.test("leader gone, members remain: a member's environment decides", async (t) => {
  // The leader exits at once; its backgrounded sleeper stays in the group.
  const child = spawn("sh", ["-c", "sleep 1000 & echo $!"], {
    detached: true,
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, FLOE_RUN_ID: "run-2" },
  });
  const pgid = child.pid ?? 0;
  let out = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  await waitFor("member pid", () => out.includes("\n"));
  const member = Number(out.trim());
  t.teardown(() => {
    try {
      process.kill(member, "SIGKILL");
    } catch {
      // already gone
    }
  });
  await waitFor("leader gone", () => !alive(pgid));
  t.ok(alive(member));
  t.equal(await killOrphanGroup(pgid, "run-3"), false);
  t.equal(await killOrphanGroup(pgid, "run-2"), true);
  await waitFor("member gone", () => !alive(member));
});
