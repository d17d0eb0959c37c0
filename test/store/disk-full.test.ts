/**
 * A full disk while a run ends (found by the chaos suite, seed 42): writing the run's end
 * failed with ENOSPC and the run stayed `active` with a result forever, holding its
 * resource lock, so every run waiting for that lock waited forever. The end must be
 * retried until the disk takes it: once space is freed the run is archived and its lock
 * goes to the next run. Needs root (a small tmpfs stands for the disk).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { unlink } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import t from "tap";
import { fillDisk, mountTmpfs, unmount } from "../helpers/disk.js";
import { startHub, until } from "../helpers/hub.js";

t.test("a run ending while the disk is full is archived once space is back, and frees its lock", async (t) => {
  const dir = t.testdir({});
  // Outside the test dir: tap removes that before later teardowns could unmount.
  const root = mkdtempSync(join(tmpdir(), "floe-disk-"));
  const why = mountTmpfs(root, 8);
  if (why !== undefined) {
    // Shown as a skip in the summary, never as a pass.
    t.skip(`needs a tmpfs, which needs root: ${why}`, () => undefined);
    return;
  }
  t.teardown(() => {
    unmount(root);
    rmSync(root, { recursive: true, force: true });
  });
  const release = join(dir, "release");
  const logged: string[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void logged.push(line) });
  const h = await startHub(
    t,
    `
flows:
  - id: first
    resource-tags: [db]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: work, type: exec, listen: trigger.good, opts: {shell: 'touch ${dir}/started; while [ ! -f ${release} ]; do sleep 0.02; done'}}
  - id: second
    resource-tags: [db]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: quick, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`,
    { root, log },
  );
  const first = (await h.hub.trigger({ flow: "first" })).ref.run;
  await until(() => existsSync(join(dir, "started")), 20_000, "the first task to start");
  const second = (await h.hub.trigger({ flow: "second" })).ref.run;
  const fill = await fillDisk(root);
  writeFileSync(release, "");
  // The task ends while nothing more fits on the disk: its end can not be written yet.
  await until(async () => (await h.hub.getRun(first)).nodes.some((n) => n.id === "work" && n.state === "good"), 20_000, "the first task to end");
  // The end was tried and refused for want of room, and is waiting: only now is space freed.
  await until(() => logged.some((l) => l.includes("the disk is full")), 20_000, "the end to be refused for want of room");
  await unlink(fill);
  // Polled with until (its timer keeps the test alive; waitForEnd's would not).
  await until(async () => (await h.hub.getRun(first)).state === "archived", 30_000, "the first run to be archived");
  const end = await h.end(first, 30_000);
  t.equal(end.state, "archived", "the run is archived once the disk has room");
  t.equal(end.result, "good");
  await until(async () => (await h.hub.getRun(second)).state === "archived", 30_000, "the second run to get the lock and end");
  const next = await h.end(second, 30_000);
  t.equal(next.result, "good", "the lock went to the run waiting for it");
});
