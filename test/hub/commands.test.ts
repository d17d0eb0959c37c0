/**
 * Commands on runs at awkward moments: a cancel that reaches a pend the dispatcher has just
 * claimed, or a run still being activated (its folder being moved and synced, no executor
 * yet), must cancel the run, not answer and let it run on (found by the README's
 * walkthrough test in CI: a cancelled migration ended good).
 */
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import t from "tap";
import { LocalClusterState, type Assignment, type Claimed, type IndexWrite, type PendRecord } from "../../hub/cluster-state.js";
import { startHub, until } from "../helpers/hub.js";

/** Claims go through at once, but their answer is held until released. A run is never taken as it is adopted here: the pass's claim is the race under test. */
class HeldClaims extends LocalClusterState {
  claimed = false;
  override async addPendTaking(p: PendRecord, index: readonly IndexWrite[] = []): Promise<Claimed | undefined> {
    await this.addPend(p, "new", index);
    return undefined;
  }
  letGo!: () => void;
  private readonly gate = new Promise<void>((r) => (this.letGo = r));
  override async claim(a: readonly Assignment[]): Promise<Claimed[]> {
    const out = await super.claim(a);
    if (out.length > 0) {
      this.claimed = true;
      await this.gate;
    }
    return out;
  }
}

t.test("a cancel racing the claim of its pend cancels the run", async (t) => {
  const state = new HeldClaims();
  const h = await startHub(t, "flows:\n  - id: a\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: w, type: exec, listen: trigger.good, opts: {shell: 'sleep 30'}}\n", { state });
  const run = (await h.hub.trigger({ flow: "a" })).ref.run;
  await until(() => state.claimed, 10_000, "the pend to be claimed");
  t.equal((await h.hub.getRun(run)).state, "pending", "this host still has it as a pend");
  const cancelling = h.hub.cancel(run, "ada");
  await new Promise((r) => setTimeout(r, 100));
  state.letGo();
  await cancelling;
  const end = await h.end(run, 30_000);
  t.same([end.state, end.result, end.reason], ["archived", "cancelled", "cancelled by ada"], "the run it became is cancelled");
  // A while later it is still ended, and nothing of it runs (the claim did not start it again).
  await new Promise((r) => setTimeout(r, 1000));
  const later = await h.hub.getRun(run);
  t.same([later.state, later.result], ["archived", "cancelled"], "still cancelled a second later");
  t.notOk(later.nodes.some((n) => n.state === "running"), "no task of it running");
});

/** fsync of folders under active/ held 400 ms while `slow` is set: an activation in progress. */
let slow = false;
const realFsync = fs.fsync;
fs.fsync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
  let path = "";
  try {
    path = fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    // not ours to look at
  }
  realFsync(fd, (e) => (slow && path.includes("/active") ? setTimeout(() => cb(e), 400) : cb(e)));
}) as typeof fs.fsync;
syncBuiltinESMExports();
t.teardown(() => {
  fs.fsync = realFsync;
  syncBuiltinESMExports();
});

t.test("a cancel while the run is being activated cancels it", async (t) => {
  const h = await startHub(t, "flows:\n  - id: a\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: w, type: exec, listen: trigger.good, opts: {shell: 'sleep 30'}}\n");
  slow = true;
  t.teardown(() => void (slow = false));
  const run = (await h.hub.trigger({ flow: "a" })).ref.run;
  await until(async () => (await h.hub.getRun(run)).state === "active", 10_000, "the run to be activated");
  const cancelled = await h.hub.cancel(run, "ada");
  slow = false;
  t.equal(cancelled.state, "archived", "the cancel answers once the run has ended");
  await new Promise((r) => setTimeout(r, 1000));
  const later = await h.hub.getRun(run);
  t.same([later.state, later.result, later.reason], ["archived", "cancelled", "cancelled by ada"]);
  t.notOk(later.nodes.some((n) => n.state === "running"), "no task of it running");
});
