/**
 * The dispatcher's loop (hub/dispatcher.ts) against a scripted cluster state: passes run
 * one at a time, wake-ups during a pass coalesce into one more, a host its lease does not
 * vouch for claims nothing, and stop() waits for the pass in flight, activations included,
 * after which no pass starts.
 */
import { pino } from "pino";
import t from "tap";
import { LocalClusterState, type Assignment, type Claimed, type Snapshot } from "../../hub/cluster-state.js";
import type { ParkRequest } from "../../store/cluster-state.js";
import { Dispatcher } from "../../hub/dispatcher.js";
import { Publisher } from "../../hub/publisher.js";
import { RunTable } from "../../hub/run-table.js";
import type { RunEvent } from "../../hub/types.js";
import { LocalBus } from "../../store/bus.js";
import { until } from "../helpers/hub.js";

class Scripted extends LocalClusterState {
  snapshots = 0;
  claims = 0;
  /** Holds each snapshot until released (a pass in flight). */
  gate: Promise<void> = Promise.resolve();
  override async snapshot(since?: number): Promise<Snapshot | undefined> {
    this.snapshots++;
    await this.gate;
    return super.snapshot(since);
  }
  override async claim(a: readonly Assignment[]): Promise<Claimed[]> {
    this.claims++;
    return super.claim(a);
  }
}

function make(state: Scripted, o: { mayClaim?: () => boolean; activate?: (run: string) => Promise<void> } = {}): Dispatcher {
  return new Dispatcher({
    state,
    table: new RunTable(),
    host: "h1",
    publisher: new Publisher(new LocalBus<RunEvent>(), undefined, undefined),
    log: pino({ level: "silent" }),
    mayClaim: o.mayClaim ?? (() => true),
    activate: async (run) => o.activate?.(run),
  });
}

async function pendFor(state: Scripted, run: string): Promise<void> {
  await state.heartbeat({ name: "h1", tags: [], slots: 4, running: 0, lastSeen: 0, startedAt: 0 }, 60_000);
  await state.addPend({ run, flowKey: "f/1", hostTags: [], resources: [], adoptedBy: "h1", adoptedAt: 1, record: "" });
}

t.test("nothing runs before open; open runs a pass; kicks during a pass coalesce into one more", async (t) => {
  const state = new Scripted();
  const d = make(state);
  d.kick();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(state.snapshots, 0, "a kick before open runs nothing");
  let release!: () => void;
  state.gate = new Promise((r) => (release = r));
  d.open();
  await until(() => state.snapshots === 1, 5000, "the first pass");
  for (let i = 0; i < 10; i++) d.kick();
  state.gate = Promise.resolve();
  release();
  await until(() => state.snapshots === 2, 5000, "one more pass");
  await new Promise((r) => setTimeout(r, 100));
  t.equal(state.snapshots, 2, "ten kicks made one more pass, not ten");
  await d.stop();
});

t.test("a host its lease does not vouch for claims nothing", async (t) => {
  const state = new Scripted();
  await pendFor(state, "r1");
  let vouched = false;
  const activated: string[] = [];
  const d = make(state, { mayClaim: () => vouched, activate: async (run) => void activated.push(run) });
  d.open();
  await until(() => state.snapshots >= 1, 5000, "a pass");
  await new Promise((r) => setTimeout(r, 50));
  t.same([state.claims, activated], [0, []], "no claim while not vouched");
  vouched = true;
  d.kick();
  await until(() => activated.length === 1, 5000, "the claim once vouched");
  t.same(activated, ["r1"]);
  await d.stop();
});

t.test("stop waits for the pass in flight and its activations; no pass after it", async (t) => {
  const state = new Scripted();
  await pendFor(state, "r1");
  let finishActivation!: () => void;
  const activating = new Promise<void>((r) => (finishActivation = r));
  let activated = false;
  const d = make(state, {
    activate: async () => {
      await activating;
      activated = true;
    },
  });
  d.open();
  await until(() => state.claims === 1, 5000, "the claim");
  let stopped = false;
  const stopping = d.stop().then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(stopped, false, "stop waits while an activation is in flight");
  finishActivation();
  await stopping;
  t.equal(activated, true, "it finished before stop resolved");
  const passes = state.snapshots;
  d.kick();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(state.snapshots, passes, "a kick after stop runs no pass");
});

t.test("a pend its pass could not park (its blocker went since the snapshot) is decided again at once, without a kick", async (t) => {
  class ReleasingBeforePark extends Scripted {
    beforePark: (() => Promise<void>) | undefined;
    override async park(p: readonly ParkRequest[]): Promise<number> {
      const f = this.beforePark;
      this.beforePark = undefined;
      await f?.();
      return super.park(p);
    }
  }
  const state = new ReleasingBeforePark();
  await state.heartbeat({ name: "h1", tags: [], slots: 4, running: 0, lastSeen: 0, startedAt: 0 }, 60_000);
  await state.heartbeat({ name: "h2", tags: [], slots: 1, running: 0, lastSeen: 0, startedAt: 0 }, 60_000);
  await state.addPend({ run: "holder", flowKey: "f/1", hostTags: [], resources: ["db"], adoptedBy: "h2", adoptedAt: 1, record: "" });
  const [held] = await state.claim([{ run: "holder", host: "h2", flowKey: "f/1", resources: ["db"] }]);
  if (held === undefined) throw new Error("no claim");
  await state.addPend({ run: "r2", flowKey: "f/1", hostTags: [], resources: ["db"], adoptedBy: "h1", adoptedAt: 2, record: "" });
  // The pass sees db held and parks r2 on it; db is released just before the park arrives.
  state.beforePark = async () => void (await state.release("holder", held.token));
  const activated: string[] = [];
  const d = make(state, { activate: async (run) => void activated.push(run) });
  d.open();
  await until(() => activated.includes("r2"), 5000, "r2 to be claimed once db was free");
  t.ok(state.snapshots >= 2, "a second pass decided it");
  await d.stop();
});
