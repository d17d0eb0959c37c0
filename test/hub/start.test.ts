/**
 * A host's start against a cluster state that fails for a moment (found in CI: a test
 * cluster's Redis, on a loaded machine, did not answer the first heartbeat within the
 * command timeout, and the host refused to start).
 */
import t from "tap";
import { LocalClusterState } from "../../hub/cluster-state.js";
import type { HostRecord } from "../../hub/cluster-state.js";
import { startHub } from "../helpers/hub.js";

const TINY = "flows:\n  - id: a\n    triggers: [{name: go, type: data}]\n    tasks: [{name: e, type: end, listen: trigger.good}]\n";

/** The real local state, whose first heartbeats fail with the given error. */
class FailingFirst extends LocalClusterState {
  calls = 0;
  constructor(
    private readonly failures: number,
    private readonly error: () => Error,
  ) {
    super();
  }
  override async heartbeat(h: HostRecord, leaseMs: number): Promise<"new" | "renewed" | "expired"> {
    if (++this.calls <= this.failures) throw this.error();
    return super.heartbeat(h, leaseMs);
  }
}

const unavailable = (): Error => Object.assign(new Error("cluster state unavailable: heartbeat failed: Redis did not answer in time"), { code: "E_UNAVAILABLE" });

t.test("a first heartbeat that fails transiently is retried, and the host starts", async (t) => {
  const state = new FailingFirst(2, unavailable);
  const h = await startHub(t, TINY, { state });
  t.equal(h.hub.state, "running");
  t.equal(state.calls >= 3, true, `three heartbeats or more (${state.calls})`);
  t.equal((await h.end((await h.hub.trigger({ flow: "a" })).ref.run)).result, "good", "and runs work");
});

t.test("any other failure refuses the start at once", async (t) => {
  const state = new FailingFirst(1, () => new Error("cluster state: unexpected reply to heartbeat"));
  await t.rejects(startHub(t, TINY, { state }), /unexpected reply/);
  t.equal(state.calls, 1, "not retried");
});
