/**
 * A Redis failover under a workload: the primary partitioned (every socket to it held open,
 * bytes held, as a partition does to TCP), the replica elected, then the link healed and the
 * old primary made a replica (test/helpers/sentinel-workload.ts says what is checked).
 */
import t from "tap";
import { sentinelScenario } from "../helpers/sentinel-workload.js";

t.test("the primary is partitioned mid-workload (its sockets held open), then heals as a replica: runs end once, locks and tokens hold", (t) => sentinelScenario(t, "partition"));
