/**
 * The spawn helper process (see spawner.ts): spawns tasks for its host with spawnLogged and
 * reports what happens over the IPC channel, output lines batched per turn of its event
 * loop. It lives as long as its host: when the channel closes it kills the tasks still
 * running and leaves; it ignores the SIGINT/SIGTERM a terminal sends to the whole group
 * (its host decides when tasks end).
 *
 *   in   { t: "spawn", id, o }  |  { t: "abort", id, reason }
 *   out  { t: "start", id, pid, pgid }  |  { t: "lines", id, lines }  |  { t: "done", id, result }
 */
import type { TaskLine } from "./contract.js";
import { killGroup, spawnLogged } from "./process.js";
import { parseSpawnRequest, type SpawnerReply } from "./spawn-wire.js";
import { errorMessage } from "../flows/errors.js";

if (process.send === undefined) throw new Error("spawn-helper runs as a child of a floe host (child_process.fork)");
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => undefined);

const aborts = new Map<number, AbortController>();
/** Process groups of the tasks running now. */
const groups = new Map<number, number>();

// The host is gone (it exited, or was killed with -9): no one will read these tasks or
// record their end, and the cluster gives their runs to other hosts after the lease. Left
// running they would overlap the new attempts, so they go with their host.
process.on("disconnect", () => {
  for (const pgid of groups.values()) killGroup(pgid, "SIGKILL");
  process.exit(0);
});
// A host killed while this helper was still loading closed the channel before the listener
// above was there to hear it.
if (!process.connected) process.exit(0);
const pending = new Map<number, TaskLine[]>();
let flushing = false;

function send(m: SpawnerReply): void {
  if (process.connected) process.send?.(m);
}

function flush(): void {
  flushing = false;
  for (const [id, lines] of pending) send({ t: "lines", id, lines });
  pending.clear();
}

process.on("message", (raw: unknown) => {
  const m = parseSpawnRequest(raw);
  if (m === undefined) return; // not a request of its host's: nothing to do
  if (m.t === "abort") {
    aborts.get(m.id)?.abort(new Error(m.reason));
    return;
  }
  const ac = new AbortController();
  aborts.set(m.id, ac);
  void spawnLogged({
    ...m.o,
    signal: ac.signal,
    onStart: (info) => {
      groups.set(m.id, info.pgid);
      send({ t: "start", id: m.id, pid: info.pid, pgid: info.pgid });
    },
    onLine: (line) => {
      let list = pending.get(m.id);
      if (list === undefined) pending.set(m.id, (list = []));
      list.push(line);
      if (!flushing) {
        flushing = true;
        setImmediate(flush);
      }
    },
  })
    .catch((e: unknown) => ({ status: 126, signal: null, error: `${m.o.cmd}: ${errorMessage(e)}` }))
    .then((result) => {
      // Its lines before its end, in order.
      const lines = pending.get(m.id);
      if (lines !== undefined) {
        pending.delete(m.id);
        send({ t: "lines", id: m.id, lines });
      }
      aborts.delete(m.id);
      groups.delete(m.id);
      send({ t: "done", id: m.id, result });
    });
});
