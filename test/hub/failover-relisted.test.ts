/**
 * A run claimed and ended on one host in the last moments before a Redis failover, where
 * the replica got neither the claim nor the end: the new primary has the run pending again,
 * and a host would claim it once the settling time is over and run it a second time (the
 * Sentinel workload test saw this: "claimed a run this host still had an old copy of").
 * The host that ended it (its run table has it archived) takes it off the list when it
 * registers again (hub/failover.ts). The failover is made on one redis-server by the epoch
 * the state is told, as the sentinels would tell it.
 */
import t from "tap";
import { pino } from "pino";
import { Redis } from "ioredis";
import { Failover } from "../../hub/failover.js";
import { makeRef, type RunRecord } from "../../hub/run-record.js";
import { RunTable } from "../../hub/run-table.js";
import { RedisClusterState } from "../../store/redis-state.js";
import { now } from "../../store/clock.js";
import { until } from "../helpers/hub.js";
import { startRedis } from "../helpers/servers.js";
import { assign, host, pend } from "../helpers/state-contract.js";

const LEASE = 400;
const MARGIN = 100;

function ended(run: string): RunRecord {
  return {
    v: 1,
    ref: (() => {
      const ref = makeRef("f", 1, run, "h1");
      return { ...ref, execHost: ref.adoptedBy };
    })(),
    flow: { id: "f", ver: 1, name: "f", triggers: [], tasks: [], hostTags: [], resourceTags: [], env: [], reuseSpace: false, onHostLoss: "requeue" } as unknown as RunRecord["flow"],
    trigger: { id: "go", type: "data", values: {} },
    adoptedAt: 1,
    attempt: 1,
    startedAt: now() - 1000,
    endedAt: now() - 500,
    result: "good",
    reason: "end node reached",
  };
}

t.test("a run that ended here but is pending on the new primary is taken off its list, and never claimed again", async (t) => {
  const redis = await startRedis(t.testdir({}));
  t.teardown(() => redis.stop());
  const conn = new Redis(redis.port, "127.0.0.1");
  t.teardown(() => conn.disconnect());
  let epoch = 0;
  const s = new RedisClusterState(conn, { cluster: "relisted", epoch: async () => epoch, ownsConnection: false });
  await until(() => conn.status === "ready", 5000, "the connection");

  const table = new RunTable();
  table.restore(ended("done-here"));
  const failover = new Failover({ host: "h1", table, state: s, log: pino({ level: "silent" }), heldHere: () => false, fence: async () => undefined, reindex: () => undefined });
  t.equal(await failover.follow(), 0, "the host's first renewal registers epoch 0");
  await s.heartbeat(host("h1", 4), LEASE, MARGIN);

  // What the new primary has after the failover: the run back on the list (its claim and end
  // were on the old primary only), and a pend of another host's that must stay.
  await s.addPend(pend("done-here"));
  await s.addPend(pend("someone-elses"));
  t.same(await s.phases(["done-here", "someone-elses"]), ["pending", "pending"]);

  // The failover: the connection drops and comes back to a primary at a new epoch.
  epoch = 1;
  const before = conn.stream;
  conn.disconnect(true);
  await until(() => conn.status === "ready" && conn.stream !== before, 5000, "the reconnection");
  t.equal(await failover.follow(), 1, "registered at the new epoch");
  t.same(await s.phases(["done-here", "someone-elses"]), ["done", "pending"], "the run that ended here is off the list; the other pend stays");

  // Claims are refused while the new epoch settles; asked until one is granted, none is ever of the ended run.
  const seen: string[] = [];
  await until(async () => {
    await s.heartbeat(host("h1", 4), LEASE, MARGIN);
    const claimed = await s.claim([assign(pend("done-here"), "h1"), assign(pend("someone-elses"), "h1")]);
    seen.push(...claimed.map((c) => c.run));
    return claimed.length > 0;
  }, 10_000, "a claim once the new epoch settled");
  t.same(seen, ["someone-elses"], "only the other pend is claimed: the ended run does not run again");
});
