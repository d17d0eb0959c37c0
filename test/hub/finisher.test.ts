/**
 * The finisher during a stop: a run's end that waits for room on a full disk is given up
 * when the hub stops (before, stop waited for it forever: the retry gave up only once the
 * hub was stopped, which stop set after waiting for every end). The run stays active on
 * disk, and the next start finishes it. Needs root (a small tmpfs stands for the disk).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import t from "tap";
import { fillDisk, mountTmpfs, unmount } from "../helpers/disk.js";
import { startHub, until } from "../helpers/hub.js";

t.test("a stop does not wait forever for an end that waits for room", async (t) => {
  const dir = t.testdir({});
  const root = mkdtempSync(join(tmpdir(), "floe-disk-"));
  const why = mountTmpfs(root, 8);
  if (why !== undefined) {
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
  const conf = `
flows:
  - id: first
    triggers: [{name: go, type: data}]
    tasks:
      - {name: work, type: exec, listen: trigger.good, opts: {shell: 'touch ${dir}/started; while [ ! -f ${release} ]; do sleep 0.02; done'}}
`;
  const h = await startHub(t, conf, { root, log });
  const run = (await h.hub.trigger({ flow: "first" })).ref.run;
  await until(() => existsSync(join(dir, "started")), 20_000, "the task to start");
  const fill = await fillDisk(root);
  writeFileSync(release, "");
  await until(() => logged.some((l) => l.includes("the disk is full")), 20_000, "the end to be refused for want of room");
  let stopped = false;
  const stopping = h.hub.stop(0).then(
    () => (stopped = true),
    () => (stopped = true),
  );
  // The retry backs off up to 5 s between tries; a stop gives up at the next one.
  await until(() => stopped, 20_000, "the stop to finish while the disk is still full");
  await stopping;
  t.ok(existsSync(join(root, "floes", "first", "1", "active", run)), "the run is still active on disk: its end was not recorded");
  await unlink(fill);
  const again = await startHub(t, conf, { root });
  t.equal((await again.end(run, 30_000)).result, "good", "the next start finishes it");
});
