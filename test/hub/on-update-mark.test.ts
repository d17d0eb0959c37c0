/**
 * on-update's look in a cluster (hub/on-update.ts): once a second a host looks at the publish
 * mark (with the lease's ticks, the one its renewals read: ClusterState.followValue), and
 * reads the flows' published definitions only when the mark moved — whatever the number of
 * flows — and a definition another host publishes is still followed.
 */
import { pino } from "pino";
import t from "tap";
import type { Config } from "../../flows/model.js";
import { parseConfig } from "../../flows/parse.js";
import type { ClusterState } from "../../hub/cluster-state.js";
import type { Finisher } from "../../hub/finisher.js";
import { OnUpdate } from "../../hub/on-update.js";
import type { Publisher } from "../../hub/publisher.js";
import type { RunTable } from "../../hub/run-table.js";
import { LocalClusterState } from "../../store/local-state.js";

function config(cmd: string): Config {
  const flows = ["a", "b", "c"].map((id) => `  - id: ${id}\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: t, type: exec, listen: trigger.good, opts: {cmd: "${cmd}"}}\n`).join("");
  const r = parseConfig(`flows:\n${flows}`, "flows.yml");
  if (r.config === undefined) throw new Error(JSON.stringify(r.diagnostics));
  return r.config;
}

/** The state, counting each key getValue reads, and each look at a value a heartbeat read (valueAtHeartbeat). */
function counting(state: LocalClusterState): { state: ClusterState; reads: Map<string, number>; atHeartbeat: Map<string, number> } {
  const reads = new Map<string, number>();
  const atHeartbeat = new Map<string, number>();
  const wrapped = new Proxy(state, {
    get(target, prop, receiver) {
      if (prop === "getValue") {
        return (key: string) => {
          reads.set(key, (reads.get(key) ?? 0) + 1);
          return target.getValue(key);
        };
      }
      if (prop === "valueAtHeartbeat") {
        return (key: string) => {
          atHeartbeat.set(key, (atHeartbeat.get(key) ?? 0) + 1);
          return target.valueAtHeartbeat(key);
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { state: wrapped, reads, atHeartbeat };
}

/** Lease ticks the test makes (Lease.onTick). */
class Ticks {
  private readonly fns = new Set<() => void>();
  onTick(fn: () => void): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }
  tick(): void {
    for (const f of this.fns) f();
  }
}

function onUpdate(state: ClusterState, host: string, conf: () => Config, ticks?: Ticks): OnUpdate {
  return new OnUpdate({
    ...(ticks !== undefined ? { ticks } : {}),
    host,
    table: { all: () => [] } as unknown as RunTable,
    state,
    finisher: {} as Finisher,
    publisher: {} as Publisher,
    clustered: true,
    log: pino({ level: "silent" }),
    config: conf,
    released: () => undefined,
  });
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test("with a timer of its own (no lease ticks): looks read the mark; definitions only when it moved; another host's publish is followed", async (t) => {
  const shared = new LocalClusterState();
  const { state, reads } = counting(shared);
  const one = config("true");
  const h1 = onUpdate(state, "h1", () => one);
  await h1.start();
  t.teardown(() => h1.stop());
  const defReads = (): number => ["def-a", "def-b", "def-c"].reduce((n, k) => n + (reads.get(k) ?? 0), 0);
  const afterStart = defReads();
  const marks = reads.get("def-published") ?? 0;
  await until("three looks", () => (reads.get("def-published") ?? 0) >= marks + 3);
  t.equal(defReads(), afterStart, "looks with the mark unchanged read no definition");

  // Another host loads a changed definition of flow b and publishes it.
  const two = config("echo changed");
  const h2 = onUpdate(shared, "h2", () => two);
  const before = h1.definitionFor(one.flows[1] as Config["flows"][number]);
  t.equal(before.tasks[0]?.name, "t");
  await h2.start();
  h2.stop();
  await until("h1 follows h2's definition", () => JSON.stringify(h1.definitionFor(one.flows[1] as Config["flows"][number])).includes("echo changed"));
  t.ok(defReads() >= afterStart + 3, "the moved mark made h1 read the definitions again");
});

t.test("with the lease's ticks: a look at the first tick a second after the last, none between", async (t) => {
  const shared = new LocalClusterState();
  const { state, reads, atHeartbeat } = counting(shared);
  const ticks = new Ticks();
  const h1 = onUpdate(state, "h1", () => config("true"), ticks);
  await h1.start();
  t.teardown(() => h1.stop());
  const readsAtStart = reads.get("def-published") ?? 0;
  // A look at the mark: with the lease's ticks, the one the last renewal read (followValue).
  const marks = (): number => (reads.get("def-published") ?? 0) + (atHeartbeat.get("def-published") ?? 0);
  const settled = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  const atStart = marks();
  ticks.tick();
  await settled();
  t.equal(marks(), atStart + 1, "the first tick looks");
  ticks.tick();
  ticks.tick();
  await settled();
  t.equal(marks(), atStart + 1, "ticks within a second of it do not");
  await new Promise((r) => setTimeout(r, 1000));
  ticks.tick();
  await settled();
  t.equal(marks(), atStart + 2, "the first tick a second later does");
  h1.stop();
  await new Promise((r) => setTimeout(r, 1000));
  ticks.tick();
  await settled();
  t.equal(marks(), atStart + 2, "after stop(), no tick looks");
  t.equal(reads.get("def-published") ?? 0, readsAtStart, "the ticks' looks took the mark the renewals read: no read of their own");
});
