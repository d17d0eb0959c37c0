/**
 * What the bus brings a host, against a real nats-server: run-level events of every run;
 * a run's node events and log lines only while it is watched (counted watches, one NATS
 * subscription per run); log lines in batches that stay under the size limit and arrive per
 * node in order, with no loss and no duplicate; history reads that page through batches and
 * create no JetStream consumer.
 */
import t, { type Test } from "tap";
import { connect } from "@nats-io/transport-node";
import { NatsLink } from "../../hub/nats-link.js";
import { runEventCodec } from "../../hub/run-event-wire.js";
import type { HostName, LogLine, RunEvent, RunId, RunRef } from "../../hub/types.js";
import { batchLimitBytes } from "../../store/event-batch.js";
import { NatsBus } from "../../store/nats-bus.js";
import { openNats, type NatsHandle } from "../../store/nats-connect.js";
import { until } from "../helpers/hub.js";
import { startNats, type Broker } from "../helpers/servers.js";

function ref(run: string): RunRef {
  return { flow: "build", ver: 1, run: run as RunId, adoptedBy: "a" as HostName, execHost: "a" as HostName };
}

function logEv(run: string, node: string, seq: number, text = `line ${seq}`): RunEvent {
  const line: LogLine = { attempt: 1, seq, at: 1_700_000_000_000 + seq, text, stream: "out" };
  return { v: 1, type: "log", ref: ref(run), node, line };
}

function nodeEv(run: string, node: string): RunEvent {
  return { v: 1, type: "node", ref: ref(run), node: { id: node, name: node, class: "task", type: "exec", state: "running", attempts: 1, runAttempt: 1, logLines: 0 } };
}

function runEv(run: string, state: "active" | "archived"): RunEvent {
  return { v: 1, type: "run", summary: { ref: ref(run), state, attempt: 1, trigger: { id: "go", type: "data", values: {} }, adoptedAt: 1 } };
}

interface Host {
  readonly nats: NatsHandle;
  readonly bus: NatsBus<RunEvent>;
  readonly link: NatsLink;
  readonly seen: RunEvent[];
}

async function host(t: Test, url: string, name: string): Promise<Host> {
  const nats = await openNats(url, { host: name });
  const bus = new NatsBus(nats, runEventCodec(nats.names));
  const link = new NatsLink(nats);
  t.teardown(async () => {
    await link.close();
    await bus.close();
    await nats.close();
  });
  const seen: RunEvent[] = [];
  bus.subscribe((ev) => seen.push(ev));
  await bus.ready();
  return { nats, bus, link, seen };
}

let broker: Broker;
t.before(async () => {
  broker = await startNats(t.testdir({}));
});
t.teardown(() => broker.stop());

t.test("a run nobody watches brings its run-level events only; a watch brings the rest until its last watcher stops", async (t) => {
  const a = await host(t, broker.url, "a");
  const b = await host(t, broker.url, "b");
  const burst = (run: string, from: number) => {
    a.bus.publish(nodeEv(run, "n"));
    for (let i = from; i < from + 50; i++) a.bus.publish(logEv(run, "n", i));
    a.bus.publish(runEv(run, "active"));
  };
  burst("s1", 1);
  await until(() => b.seen.length === 1, 10_000, "the run-level event");
  await b.nats.nc.flush();
  t.same(b.seen.map((e) => e.type), ["run"], "only the run-level event reached b");
  t.equal(b.bus.stats.watchedMessages, 0, "no message of a watched run");
  t.equal(b.bus.stats.messages, 1, "one NATS message in all");

  const w1 = b.bus.watch("s1");
  const w2 = b.bus.watch("s1");
  await Promise.all([w1.ready, w2.ready]);
  t.same(b.bus.watchedRuns(), ["s1"], "one subscription for two watchers");
  burst("s1", 51);
  await until(() => b.seen.length === 1 + 52, 10_000, "the watched burst");
  t.same(b.seen.slice(1).map((e) => e.type), ["node", ...Array<string>(50).fill("log"), "run"], "node event, lines, run event: each once, in order");
  w1.stop();
  w1.stop();
  t.same(b.bus.watchedRuns(), ["s1"], "still watched by the other (a stop is counted once)");
  burst("s1", 101);
  await until(() => b.seen.length === 53 + 52, 10_000, "the burst seen by the remaining watcher");
  w2.stop();
  t.same(b.bus.watchedRuns(), [], "the last watcher gone, the subscription is gone");
  // The server has the unsubscription before A publishes again.
  await b.nats.nc.flush();
  const before = b.bus.stats.watchedMessages;
  burst("s1", 151);
  await until(() => b.seen.length === 105 + 1, 10_000, "the next run-level event");
  await b.nats.nc.flush();
  t.equal(b.seen.length, 106, "no line after the last watch stopped");
  t.equal(b.bus.stats.watchedMessages, before);
  // A's own subscribers had everything, at once.
  t.equal(a.seen.length, 4 * 52);
});

t.test("batched lines: under the size limit, per node in order, none lost or doubled, live and in the history", async (t) => {
  const a = await host(t, broker.url, "a");
  const b = await host(t, broker.url, "b");
  await b.bus.watch("big").ready;
  const raw = await connect({ servers: broker.url });
  t.teardown(() => raw.close());
  const sizes: number[] = [];
  raw.subscribe(a.nats.names.runEvents("big"), { callback: (_e, m) => void sizes.push(m.data.length) });
  await raw.flush();
  const nodes = ["n0", "n1", "n2", "n3"];
  const N = 1500;
  const next = new Map(nodes.map((n) => [n, 1]));
  let published = 0;
  // Bursts of varied lines, some of 20 kB, across event loop turns.
  for (let turn = 0; turn < 60; turn++) {
    for (let k = 0; k < 120; k++) {
      const node = nodes[(turn * 7 + k * 3) % nodes.length] as string;
      const seq = next.get(node) as number;
      if (seq > N) continue;
      next.set(node, seq + 1);
      a.bus.publish(logEv("big", node, seq, seq % 97 === 0 ? "x".repeat(20_000) : `line ${seq} of ${node}`));
      published++;
    }
    await new Promise((r) => setImmediate(r));
  }
  for (const node of nodes) {
    for (let seq = next.get(node) as number; seq <= N; seq++) a.bus.publish(logEv("big", node, seq));
    published += N - (next.get(node) as number) + 1;
  }
  a.bus.publish(runEv("big", "archived"));
  t.equal(published, nodes.length * N);
  await until(() => b.seen.filter((e) => e.type === "log").length >= published, 30_000, "every line at b");
  await b.nats.nc.flush();
  for (const node of nodes) {
    const seqs = b.seen.flatMap((e) => (e.type === "log" && e.node === node ? [e.line.seq] : []));
    t.same(seqs, Array.from({ length: N }, (_, i) => i + 1), `${node}: every line once, in order`);
  }
  t.equal(b.seen.at(-1)?.type, "run", "the run's end came after all its lines");
  const limit = batchLimitBytes(a.nats.nc.info?.max_payload);
  t.ok(sizes.every((s) => s <= limit), `every message within ${limit} bytes (largest ${Math.max(...sizes)})`);
  t.ok(a.bus.stats.sent < published / 10, `${published} lines in ${a.bus.stats.sent} messages`);

  // The history, read 100 lines at a time (a batch cut short is read again from its start).
  for (const node of nodes) {
    const got: number[] = [];
    for (let after = 0; ; ) {
      const page = await b.link.logs("big", node, 1, after, 100);
      if (page.length === 0) break;
      got.push(...page.map((l) => l.seq));
      after = page.at(-1)?.seq ?? after;
    }
    t.same(got, Array.from({ length: N }, (_, i) => i + 1), `${node}: the history pages through every line once`);
  }
  t.equal((await b.link.logs("big", "n1", 1, 0, 10_000)).length, N, "and in one read");
  const si = await b.nats.jsm.streams.info(b.nats.names.stream);
  t.equal(si.state.consumer_count, 0, "history reads made no consumer");
});
