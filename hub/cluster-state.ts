/** The shared-state contract lives in store/ (its Redis and in-process implementations are there). */
export type { ActiveEntry, Assignment, Claimed, ClusterState, HeldRun, HostRecord, Resynced, IndexedRun, IndexQuery, IndexWrite, PendRecord, PendView, Snapshot, SnapshotHost } from "../store/cluster-state.js";
export { LocalClusterState } from "../store/local-state.js";
export { WAKE_STANDS_MS } from "../store/cluster-state.js";
