/**
 * A Redis failover under a workload: the primary partitioned (every socket to it held open,
 * bytes held, as a partition does to TCP), the replica elected, then the link healed and the
 * old primary made a replica (test/helpers/sentinel-workload.ts says what is checked).
 *
 * Not run by default: it shows a fault not fixed yet. A host's connection to a partitioned
 * primary stays open, so the host never asks the sentinels again and never reaches the new
 * primary (the run times out). With ioredis's failover detector (`failoverDetector: true`,
 * and a reconnection on READONLY) it passed 6 rounds of 6, but the killed-primary test then
 * ran one locked run's task twice in 2 rounds of 6, for a cause not found yet, so the
 * detector is off. FLOE_SENTINEL_PARTITION=1 runs it.
 */
import t from "tap";
import { sentinelScenario } from "../helpers/sentinel-workload.js";

const run = process.env["FLOE_SENTINEL_PARTITION"] === "1";

t.test(
  "the primary is partitioned mid-workload (its sockets held open), then heals as a replica: runs end once, locks and tokens hold",
  run ? {} : { skip: "known fault: hosts do not follow a failover away from a partitioned primary (see this file's header); FLOE_SENTINEL_PARTITION=1 runs it" },
  (t) => sentinelScenario(t, "partition"),
);
