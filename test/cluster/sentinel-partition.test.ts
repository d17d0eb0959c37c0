/**
 * A Redis failover under a workload: the primary partitioned (every socket to it held open,
 * bytes held, as a partition does to TCP), the replica elected, then the link healed and the
 * old primary made a replica (test/helpers/sentinel-workload.ts says what is checked).
 *
 * A host's connection to a partitioned primary stays open; before hosts dropped a
 * connection silent for 4 s through Sentinel (store/redis-state.ts dropIfSilent), they never
 * asked the sentinels again, never reached the new primary, and the runs never ended.
 */
import t from "tap";
import { sentinelScenario } from "../helpers/sentinel-workload.js";

t.test("the primary is partitioned mid-workload (its sockets held open), then heals as a replica: runs end once, locks and tokens hold", (t) => sentinelScenario(t, "partition"));
