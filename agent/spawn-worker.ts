/**
 * The spawner thread (see spawner.ts): runs spawnHere for the host's main thread and sends
 * back what happens, output lines batched per turn of this thread's event loop.
 *
 *   in   { t: "spawn", id, o }  |  { t: "abort", id, reason }
 *   out  { t: "start", id, pid, pgid }  |  { t: "lines", id, lines }  |  { t: "done", id, result }
 */
import { parentPort } from "node:worker_threads";
import type { TaskLine } from "./contract.js";
import { spawnHere } from "./process.js";
import type { SpawnRequest, SpawnerReply } from "./spawner.js";

const port = parentPort;
if (port === null) throw new Error("spawn-worker.js runs as a worker thread");
const aborts = new Map<number, AbortController>();
const pending = new Map<number, TaskLine[]>();
let flushing = false;

function send(m: SpawnerReply): void {
  port?.postMessage(m);
}

function flush(): void {
  flushing = false;
  for (const [id, lines] of pending) send({ t: "lines", id, lines });
  pending.clear();
}

port.on("message", (m: SpawnRequest) => {
  if (m.t === "abort") {
    aborts.get(m.id)?.abort(new Error(m.reason));
    return;
  }
  const ac = new AbortController();
  aborts.set(m.id, ac);
  void spawnHere({
    ...m.o,
    signal: ac.signal,
    onStart: (info) => send({ t: "start", id: m.id, pid: info.pid, pgid: info.pgid }),
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
    .catch((e: unknown) => ({ status: 126, signal: null, error: `${m.o.cmd}: ${e instanceof Error ? e.message : String(e)}` }))
    .then((result) => {
      // Lines before the end, in order.
      const lines = pending.get(m.id);
      if (lines !== undefined) {
        pending.delete(m.id);
        send({ t: "lines", id: m.id, lines });
      }
      aborts.delete(m.id);
      send({ t: "done", id: m.id, result });
    });
});
