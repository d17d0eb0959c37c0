/**
 * The hub's lifecycle, which must not be misusable (each case failed before the hub was
 * reshaped around hub/lifecycle.ts):
 * - start() twice, trigger() before start() and after stop() get clear errors; the state
 *   can be read, not written; stop() is idempotent;
 * - stop() waits for a dispatch pass in flight, and a run it claimed does not start after
 *   the executors were suspended (it waits in active/ for the next start);
 * - a lease renewal in flight when the hub stops does not register the host again after
 *   the stop removed it;
 * - the hub's lease is the command line's default (2 s), not one of its own.
 */
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import t from "tap";
import { hostCommands } from "../../agent/host-commands.js";
import type { TaskRunner } from "../../agent/contract.js";
import { parseSettings } from "../../cmd/settings.js";
import { LocalClusterState, type Assignment, type Claimed, type HostRecord, type IndexWrite, type PendRecord } from "../../hub/cluster-state.js";
import { Hub } from "../../hub/hub.js";
import { DEFAULT_LEASE_MS } from "../../hub/lease.js";
import type { RunEvent } from "../../hub/types.js";
import { LocalBus } from "../../store/bus.js";
import { config, startHub, until } from "../helpers/hub.js";

const TINY = "flows:\n  - id: a\n    triggers: [{name: go, type: data}]\n    tasks: [{name: w, type: exec, listen: trigger.good, opts: {cmd: 'true'}}]\n";

function newHub(state = new LocalClusterState(), runTask: TaskRunner = async () => ({ status: 0, outputs: {} })): { hub: Hub; root: string } {
  const root = mkdtempSync(join(tmpdir(), "floe-life-"));
  const hub = new Hub({ config: config(TINY), configDir: root, root, host: "h1", tags: [], slots: 2, log: pino({ level: "silent" }), runTask, commands: hostCommands, bus: new LocalBus<RunEvent>(), state });
  return { hub, root };
}

class Gate {
  open!: () => void;
  readonly opened = new Promise<void>((r) => (this.open = r));
}

t.test("start twice, trigger before start and after stop: clear errors; state read-only; stop idempotent", async (t) => {
  const { hub } = newHub();
  t.equal(hub.state, "new");
  await t.rejects(hub.trigger({ flow: "a" }), { code: "E_NOT_STARTED", message: /has not started yet/ }, "a trigger before the start");
  await hub.start();
  t.equal(hub.state, "running");
  await t.rejects(hub.start(), { message: /already started/ }, "a second start");
  t.throws(() => Object.assign(hub, { state: "stopped" }), TypeError, "the state is not writable from outside");
  t.equal(hub.state, "running");
  const first = hub.stop();
  t.equal(hub.stop(), first, "a second stop is the same stop");
  await first;
  t.equal(hub.state, "stopped");
  await t.rejects(hub.trigger({ flow: "a" }), { code: "E_STOPPING" }, "a trigger after the stop");
});

/** A cluster state whose claims wait for a gate (a dispatch pass in flight); no run is taken as it is adopted. */
class SlowClaims extends LocalClusterState {
  readonly gate = new Gate();
  claiming = false;
  override async addPendTaking(p: PendRecord, index: readonly IndexWrite[] = []): Promise<Claimed | undefined> {
    await this.addPend(p, "new", index);
    return undefined;
  }
  override async claim(a: readonly Assignment[]): Promise<Claimed[]> {
    this.claiming = true;
    await this.gate.opened;
    return super.claim(a);
  }
}

t.test("stop waits for a dispatch pass in flight; its claim does not start after the executors stopped", async (t) => {
  const state = new SlowClaims();
  const started: string[] = [];
  const { hub, root } = newHub(state, async (req) => {
    started.push(req.nodeId);
    return { status: 0, outputs: {} };
  });
  await hub.start();
  const run = (await hub.trigger({ flow: "a" })).ref.run;
  await until(() => state.claiming, 10_000, "the dispatch pass to be claiming");
  let stopped = false;
  const stopping = hub.stop(0).then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 200));
  t.equal(stopped, false, "stop waits for the pass in flight");
  state.gate.open();
  await stopping;
  await new Promise((r) => setTimeout(r, 200));
  t.same(started, [], "no task started after the stop");
  t.ok(existsSync(join(root, "floes", "a", "1", "active", run)), "the claimed run waits in active/ for the next start");
  const again = await startHub(t, TINY, { root });
  t.equal((await again.end(run)).result, "good", "and the next start runs it");
});

/** A cluster state whose takes at adoption are made at once, their answer held by a gate. */
class SlowTakes extends LocalClusterState {
  readonly gate = new Gate();
  taking = false;
  override async addPendTaking(p: PendRecord, index: readonly IndexWrite[] = []): Promise<Claimed | undefined> {
    const c = await super.addPendTaking(p, index);
    this.taking = true;
    await this.gate.opened;
    return c;
  }
}

t.test("stop waits for a run taken as it is adopted; it does not start after the executors stopped, and the next start runs it", async (t) => {
  const state = new SlowTakes();
  const started: string[] = [];
  const { hub, root } = newHub(state, async (req) => {
    started.push(req.nodeId);
    return { status: 0, outputs: {} };
  });
  await hub.start();
  const triggering = hub.trigger({ flow: "a" });
  await until(() => state.taking, 10_000, "the run to be taken as it is adopted");
  let stopped = false;
  const stopping = hub.stop(0).then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 200));
  t.equal(stopped, false, "stop waits for the take in flight");
  state.gate.open();
  const run = (await triggering).ref.run;
  await stopping;
  await new Promise((r) => setTimeout(r, 200));
  t.same(started, [], "no task started after the stop");
  t.ok(existsSync(join(root, "floes", "a", "1", "active", run)), "the taken run waits in active/ for the next start");
  const again = await startHub(t, TINY, { root });
  t.equal((await again.end(run)).result, "good", "and the next start runs it");
});

/** A cluster state whose renewals after the first wait for a gate. */
class SlowRenewals extends LocalClusterState {
  readonly gate = new Gate();
  renewals = 0;
  leases: number[] = [];
  override async heartbeat(h: HostRecord, leaseMs: number, marginMs?: number): Promise<"new" | "renewed" | "expired"> {
    this.leases.push(leaseMs);
    if (++this.renewals >= 2) await this.gate.opened;
    return super.heartbeat(h, leaseMs, marginMs);
  }
}

t.test("a lease renewal in flight during stop does not register the host again", async (t) => {
  const state = new SlowRenewals();
  const { hub } = newHub(state);
  await hub.start();
  await until(() => state.renewals >= 2, 10_000, "a renewal to be in flight");
  const stopping = hub.stop(0);
  await new Promise((r) => setTimeout(r, 100));
  state.gate.open();
  await stopping;
  await new Promise((r) => setTimeout(r, 100));
  t.same((await state.hosts()).map((h) => h.host.name), [], "the stopped host is not registered");
});

t.test("the hub's lease is the command line's default", async (t) => {
  const state = new SlowRenewals();
  state.gate.open();
  const { hub } = newHub(state);
  await hub.start();
  await hub.stop();
  t.equal(state.leases[0], DEFAULT_LEASE_MS, "the hub renews for DEFAULT_LEASE_MS");
  t.equal(parseSettings(["--conf=x.yml"], {}).leaseMs, DEFAULT_LEASE_MS, "floe serve's --lease default");
  t.equal(DEFAULT_LEASE_MS, 2000);
});

t.test("a reload that moves workspace-root: an older run's workspace is pruned where it was made", async (t) => {
  const a = mkdtempSync(join(tmpdir(), "floe-ws-a-"));
  const b = mkdtempSync(join(tmpdir(), "floe-ws-b-"));
  const gate = join(a, "go");
  const text = (ws: string): string => `
common: {retention: {runs: 1}, workspace-root: ${ws}}
flows:
  - id: w
    triggers: [{name: go, type: data}]
    tasks:
      - {name: s, type: exec, listen: trigger.good, opts: {shell: 'touch "$FLOEWS/mark"; while [ ! -f ${gate} ]; do sleep 0.02; done'}}
`;
  const h = await startHub(t, text(a));
  const first = (await h.hub.trigger({ flow: "w" })).ref.run;
  await until(() => existsSync(join(a, "spaces", "w", first, "mark")), 20_000, "the first run's task to start in root a");
  h.hub.reload(config(text(b)));
  const { writeFileSync } = await import("node:fs");
  writeFileSync(gate, "");
  t.equal((await h.end(first)).result, "good");
  for (let i = 0; i < 2; i++) await h.end((await h.hub.trigger({ flow: "w" })).ref.run);
  await h.hub.stop();
  t.notOk(existsSync(join(a, "spaces", "w", first)), "the first run's workspace in the old root is pruned");
  t.equal(readdirSync(join(b, "spaces", "w")).length, 1, "the newer runs use the new root; one is kept");
});
