/**
 * NATS messaging of a cluster against a real nats-server (JetStream on, its own store):
 * the event bus between two hosts' connections, the run history in JetStream, host
 * requests, a broker killed with -9 and restarted, startup refusals, and hostile ids.
 */
import { spawn } from "node:child_process";
import t, { type Test } from "tap";
import { connect } from "@nats-io/transport-node";
import { DiscardPolicy, StorageType } from "@nats-io/jetstream";
import { FloeError } from "../../hub/errors.js";
import { NatsLink } from "../../hub/nats-link.js";
import { runEventCodec } from "../../hub/run-event-wire.js";
import type { HostName, LogLine, NodeStatus, RunEvent, RunId, RunRef } from "../../hub/types.js";
import { NatsBus } from "../../store/nats-bus.js";
import { openNats, type NatsHandle, type NatsOptions } from "../../store/nats-connect.js";
import { natsNames, subjectToken } from "../../store/nats-subjects.js";
import { until } from "../helpers/hub.js";
import { freePort, startNats, type Broker } from "../helpers/servers.js";

// --- events ---------------------------------------------------------------------------

function ref(run: string): RunRef {
  return { flow: "build", ver: 1, run: run as RunId, adoptedBy: "a" as HostName, execHost: "a" as HostName };
}

function logEv(run: string, node: string, seq: number, text = `line ${seq}`, attempt = 1): RunEvent {
  const line: LogLine = { attempt, seq, at: 1_700_000_000_000 + seq, text, stream: "out" };
  return { v: 1, type: "log", ref: ref(run), node, line };
}

function nodeEv(run: string, node: string, state: NodeStatus["state"]): RunEvent {
  return { v: 1, type: "node", ref: ref(run), node: { id: node, name: node, class: "task", type: "exec", state, attempts: 1, runAttempt: 1, logLines: 0 } };
}

function runEv(run: string, state: "pending" | "active" | "archived"): RunEvent {
  return {
    v: 1,
    type: "run",
    summary: { ref: ref(run), state, attempt: 1, trigger: { id: "go", type: "data", values: {} }, adoptedAt: 1, ...(state === "archived" ? { result: "good" as const } : {}) },
  };
}

/** A short label of an event, to compare sequences. */
function label(ev: RunEvent): string {
  if (ev.type === "log") return `${ev.ref.run}/${ev.node}#${ev.line.seq}`;
  if (ev.type === "node") return `${ev.ref.run}/${ev.node.id}:${ev.node.state}`;
  return `${ev.summary.ref.run}:${ev.summary.state}`;
}

/**
 * Why `got` is not `sent` as the bus may reorder it, or undefined: log lines go in batches
 * per node, so lines of different nodes may interleave otherwise; but each node's lines
 * keep their order, no line crosses a run or node event, and nothing is lost or doubled.
 */
function wireOrderProblem(got: readonly RunEvent[], sent: readonly RunEvent[]): string | undefined {
  if (got.length !== sent.length) return `${got.length} events, not ${sent.length}`;
  const segment = new Map<string, number>();
  let k = 0;
  for (const ev of sent) {
    if (ev.type === "log") segment.set(label(ev), k);
    else k++;
  }
  const others = (xs: readonly RunEvent[]) => xs.filter((e) => e.type !== "log").map(label).join(",");
  if (others(got) !== others(sent)) return "run and node events out of order";
  k = 0;
  const last = new Map<string, number>();
  for (const ev of got) {
    if (ev.type !== "log") {
      k++;
      continue;
    }
    if (segment.get(label(ev)) !== k) return `${label(ev)} moved across a run or node event`;
    const key = `${ev.ref.run}/${ev.node}`;
    if ((last.get(key) ?? 0) >= ev.line.seq) return `${label(ev)} out of order or twice`;
    last.set(key, ev.line.seq);
  }
  return undefined;
}

/** B hears the node events and log lines of these runs from now on. */
async function watchRuns(h: Host, runs: readonly string[]): Promise<void> {
  await Promise.all(runs.map((r) => h.bus.watch(r).ready));
}

// --- hosts ----------------------------------------------------------------------------

interface Host {
  readonly nats: NatsHandle;
  readonly bus: NatsBus<RunEvent>;
  readonly link: NatsLink;
  /** Everything this host's bus delivered, in order. */
  readonly seen: RunEvent[];
}

async function host(t: Test, url: string, name: string, o: Partial<NatsOptions> & { outageBufferBytes?: number; askTimeoutMs?: number } = {}): Promise<Host> {
  const nats = await openNats(url, { host: name, ...o });
  const bus = new NatsBus(nats, runEventCodec(nats.names), o.outageBufferBytes !== undefined ? { outageBufferBytes: o.outageBufferBytes } : {});
  const link = new NatsLink(nats, o.askTimeoutMs !== undefined ? { askTimeoutMs: o.askTimeoutMs } : {});
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

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

let broker: Broker;
t.before(async () => {
  broker = await startNats(t.testdir({}));
});
t.teardown(() => broker.stop());

// --- subjects -------------------------------------------------------------------------

const HOSTILE = ["a.b", "a", "*", ">", "a b", " ", "", "\0", "a\tb\r\n", "%2E", "a%2Eb", "~", "ü", "😀", "x".repeat(10_000), `${"x".repeat(10_000)}.y`];

t.test("subject tokens: no id can add a token, a wildcard or whitespace; distinct ids stay distinct; length capped", async (t) => {
  const tokens = HOSTILE.map(subjectToken);
  for (const [i, tok] of tokens.entries()) {
    t.match(tok, /^[A-Za-z0-9_%~-]+$/, `token of ${JSON.stringify(HOSTILE[i]?.slice(0, 20))} has only safe characters`);
    t.ok(tok.length <= 80, `token length ${tok.length}`);
  }
  t.equal(new Set(tokens).size, tokens.length, "every id has its own token");
  t.equal(subjectToken("run-01H_x"), "run-01H_x", "plain ids are kept as they are");
  const n = natsNames("c.*");
  t.equal(n.cluster, "c.*");
  t.equal(n.event("a.b", "log", "n>1").split(".").length, 6, "floe.<c>.ev.<run>.log.<node>: six tokens whatever the ids");
  t.equal(n.event("*", "run").split(".").length, 5);
  t.equal(n.hostVerb("h.x", "data").split(".").length, 5);
  t.notMatch(n.stream, /[.*>\s/\\]/, "the stream name is a valid JetStream name");
  t.equal(natsNames().allEvents, "floe.floe.ev.>", "cluster defaults to floe");
  t.throws(() => n.event("r", "log"), { message: /needs a node id/ });
});

// --- bus ------------------------------------------------------------------------------

t.test("A's events reach B's subscribers in order; A's own subscribers get each exactly once", async (t) => {
  const a = await host(t, broker.url, "a");
  const b = await host(t, broker.url, "b");
  const failing = b.bus.subscribe(() => {
    throw new Error("a subscriber's bug");
  });
  await watchRuns(b, ["r1", "r2"]);
  const N = 5000;
  const evs: RunEvent[] = [];
  const sent: string[] = [];
  for (let i = 1; i <= N; i++) {
    const ev = i % 100 === 0 ? nodeEv("r1", `n${i}`, "good") : i % 250 === 0 ? runEv("r1", "active") : logEv(i % 2 ? "r1" : "r2", "build", i);
    sent.push(label(ev));
    evs.push(ev);
    a.bus.publish(ev);
  }
  t.equal(a.seen.length, N, "A's local subscriber had every event synchronously");
  await until(() => b.seen.length >= N, 30_000, `B to receive ${N} events (has ${b.seen.length})`);
  t.equal(wireOrderProblem(b.seen, evs), undefined, "B got them all, in publish order (log lines per node), despite a throwing subscriber");
  t.ok(a.bus.stats.sent < N / 2, `log lines went in batches (${a.bus.stats.sent} messages for ${N} events)`);
  // Anything the server would echo back to A arrives before the reply to this flush.
  await a.nats.nc.flush();
  t.equal(a.seen.length, N, "no echo: A's subscriber still saw each event once");
  t.same(a.seen.map(label), sent);
  failing();
  // B's events reach A; unsubscribed functions get nothing more.
  let late = 0;
  const off = a.bus.subscribe(() => late++);
  b.bus.publish(runEv("r9", "archived"));
  await until(() => a.seen.length === N + 1, 10_000, "A to receive B's event");
  t.equal(label(a.seen[N] as RunEvent), "r9:archived");
  t.equal(late, 1);
  off();
  b.bus.publish(runEv("r10", "archived"));
  await until(() => a.seen.length === N + 2, 10_000, "A to receive B's second event");
  t.equal(late, 1, "an unsubscribed function is not called");
  t.equal(b.bus.stats.malformed, 0);
});

t.test("malformed messages are dropped and counted; valid ones after them still arrive", async (t) => {
  const b = await host(t, broker.url, "b");
  await watchRuns(b, ["rm", "other"]);
  const raw = await connect({ servers: broker.url });
  t.teardown(() => raw.close());
  const n = natsNames();
  const ok = logEv("rm", "n", 1);
  const bad: [string, string][] = [
    [n.event("rm", "run"), "not json"],
    [n.event("rm", "run"), JSON.stringify({ ...runEv("rm", "active"), v: 2 })],
    [n.event("rm", "run"), JSON.stringify({ v: 1, type: "run", summary: { state: "active" } })],
    [n.event("rm", "log", "n"), JSON.stringify({ ...ok, line: { seq: "1", at: 1, text: "x", stream: "out" } })],
    [n.event("rm", "log", "n"), JSON.stringify({ ...ok, type: "bogus" })],
    // A valid event filed under another run's subject is not believed.
    [n.event("other", "log", "n"), JSON.stringify(ok)],
    // In a batch too, each line is checked: the bad one is dropped.
    [n.event("rm", "log", "n"), `[${JSON.stringify({ ...ok, type: "bogus" })}]`],
  ];
  for (const [subject, body] of bad) raw.publish(subject, body);
  raw.publish(n.event("rm", "log", "n"), JSON.stringify(ok));
  await until(() => b.seen.length >= 1, 10_000, "the valid event");
  t.same(b.seen.map(label), ["rm/n#1"], "only the valid event was delivered");
  t.equal(b.bus.stats.malformed, bad.length, "each malformed message counted");
  t.ok(Object.isFrozen(b.seen[0]) && Object.isFrozen((b.seen[0] as Extract<RunEvent, { type: "log" }>).line), "arrivals are frozen");
});

// --- history --------------------------------------------------------------------------

t.test("logs and runEvents come from the JetStream history after the publisher closed", async (t) => {
  const a = await host(t, broker.url, "a");
  const b = await host(t, broker.url, "b");
  const sent: RunEvent[] = [runEv("h1", "active"), nodeEv("h1", "build", "running")];
  for (let i = 1; i <= 300; i++) {
    sent.push(logEv("h1", "build", i));
    if (i % 3 === 0) sent.push(logEv("h1", "test", i));
    if (i % 7 === 0) sent.push(logEv("h2", "build", i));
  }
  sent.push(nodeEv("h1", "build", "good"), runEv("h1", "archived"));
  for (const ev of sent) a.bus.publish(ev);
  await a.nats.close();
  t.ok(a.nats.nc.isClosed(), "the publisher is gone");

  await until(async () => (await b.link.logs("h1", "build", 1, 0, 10_000)).length === 300, 15_000, "300 lines in the history");
  const all = await b.link.logs("h1", "build", 1, 0, 10_000);
  t.same(all.map((l) => l.seq), Array.from({ length: 300 }, (_, i) => i + 1), "every line of that node, in order, no other node's or run's");
  t.match(all[0], { seq: 1, text: "line 1", stream: "out" });
  t.same((await b.link.logs("h1", "build", 1, 40, 10)).map((l) => l.seq), [41, 42, 43, 44, 45, 46, 47, 48, 49, 50], "after/limit");
  t.same((await b.link.logs("h1", "build", 1, 295, 100)).map((l) => l.seq), [296, 297, 298, 299, 300], "limit past the end");
  t.same(await b.link.logs("h1", "build", 1, 300, 100), [], "nothing after the last line");
  t.same(await b.link.logs("h1", "build", 1, 0, 0), [], "limit 0");
  t.equal((await b.link.logs("h1", "test", 1, 0, 10_000)).length, 100, "another node's lines");
  t.same(await b.link.logs("nope", "build", 1, 0, 100), [], "a run never seen has no lines");

  await until(async () => (await b.link.runEvents("h1")).length === sent.filter((e) => label(e).startsWith("h1")).length, 15_000, "run events");
  const evs = await b.link.runEvents("h1");
  t.equal(wireOrderProblem(evs, sent.filter((e) => label(e).startsWith("h1"))), undefined, "every event of run h1, in order (log lines per node), none of h2");
  t.same(await b.link.runEvents("nope"), []);
  t.equal((await b.link.runEvents("h2")).length, 42);
  const si = await b.nats.jsm.streams.info(b.nats.names.stream);
  await until(async () => (await b.nats.jsm.streams.info(b.nats.names.stream)).state.consumer_count === 0, 10_000, `reads to delete their consumers (${si.state.consumer_count} left)`);
});

t.test("following a live log: each read continues after the last, new lines included", async (t) => {
  const a = await host(t, broker.url, "a");
  const b = await host(t, broker.url, "b");
  const got: number[] = [];
  let next = 1;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 37; i++) a.bus.publish(logEv("f1", "n", next++));
    a.bus.publish(logEv("f1", "other", next));
    const want = next - 1;
    await until(
      async () => {
        got.push(...(await b.link.logs("f1", "n", 1, got.at(-1) ?? 0, 25)).map((l) => l.seq));
        return got.at(-1) === want;
      },
      10_000,
      `lines up to ${want}`,
    );
  }
  t.same(got, Array.from({ length: 185 }, (_, i) => i + 1), "every line once, in order, read 25 at a time");
  t.same((await b.link.logs("f1", "n", 1, 10, 3)).map((l) => l.seq), [11, 12, 13], "going back to an earlier line still works");
  t.same((await b.link.logs("f1", "n", 1, 183, 10)).map((l) => l.seq), [184, 185]);
});

t.test("a requeued run's attempts are read apart: each its own lines, numbered from 1; lines without an attempt are of attempt 1", async (t) => {
  const a = await host(t, broker.url, "a");
  const b = await host(t, broker.url, "b");
  const raw = await connect({ servers: broker.url });
  t.teardown(() => raw.close());
  // Attempt 1 as a host of before attempts were recorded sent it (no attempt on its lines).
  for (let i = 1; i <= 5; i++) {
    const old = { seq: i, at: 1_700_000_000_000 + i, text: `epoch ${i} on h2`, stream: "out" };
    raw.publish(natsNames().event("rq", "log", "long"), JSON.stringify({ v: 1, type: "log", ref: ref("rq"), node: "long", line: old }));
  }
  await raw.flush();
  await until(async () => (await b.link.logs("rq", "long", 1, 0, 100)).length === 5, 10_000, "attempt 1's lines in the history");
  for (let i = 1; i <= 3; i++) a.bus.publish(logEv("rq", "long", i, `epoch ${i} on h4`, 2));
  await until(async () => (await b.link.logs("rq", "long", 2, 0, 100)).length === 3, 10_000, "attempt 2's lines in the history");

  const one = await b.link.logs("rq", "long", 1, 0, 100);
  t.same(one.map((l) => [l.attempt, l.seq, l.text]), [1, 2, 3, 4, 5].map((i) => [1, i, `epoch ${i} on h2`]), "attempt 1: its own lines only, marked attempt 1");
  const two = await b.link.logs("rq", "long", 2, 0, 100);
  t.same(two.map((l) => [l.attempt, l.seq, l.text]), [1, 2, 3].map((i) => [2, i, `epoch ${i} on h4`]), "attempt 2: its own lines only, numbered from 1");
  // Following one attempt does not lose the other's place.
  t.same((await b.link.logs("rq", "long", 2, 1, 100)).map((l) => l.seq), [2, 3], "attempt 2 after line 1");
  t.same((await b.link.logs("rq", "long", 1, 3, 100)).map((l) => l.seq), [4, 5], "attempt 1 after line 3");
  t.same(await b.link.logs("rq", "long", 3, 0, 100), [], "an attempt with no lines");
});

t.test("the event stream is created with retention limits, and updated when they change", async (t) => {
  const a = await host(t, broker.url, "a");
  const si = await a.nats.jsm.streams.info(a.nats.names.stream);
  t.same(si.config.subjects, ["floe.floe.ev.>"]);
  t.equal(si.config.max_age, 7 * 24 * 3600 * 1e9, "7 days");
  t.equal(si.config.max_bytes, 1024 ** 3, "1 GiB");
  t.equal(si.config.discard, DiscardPolicy.Old);
  t.equal(si.config.storage, StorageType.File);
  const b = await host(t, broker.url, "b", { history: { maxAgeMs: 3600_000, maxBytes: 64 * 1024 * 1024 } });
  const si2 = await b.nats.jsm.streams.info(b.nats.names.stream);
  t.equal(si2.config.max_age, 3600 * 1e9, "max age updated");
  t.equal(si2.config.max_bytes, 64 * 1024 * 1024, "max bytes updated");
  t.equal(si2.state.messages, si.state.messages, "updating kept the history");
  await t.rejects(openNats(broker.url, { host: "x", history: { maxBytes: 10 } }), { message: /at least 1 s and 1 MiB/ });
  // Another cluster on the same server has its own stream and never sees these events.
  const other = await host(t, broker.url, "a", { cluster: "other" });
  t.not(other.nats.names.stream, a.nats.names.stream);
  a.bus.publish(runEv("iso", "active"));
  await until(async () => (await a.link.runEvents("iso")).length === 1, 10_000, "the event in floe's history");
  t.same(await other.link.runEvents("iso"), [], "not in the other cluster's history");
  t.same(other.seen, [], "nor on its bus");
});

// --- requests -------------------------------------------------------------------------

t.test("ask/serve: values and FloeErrors cross; unknown hosts are unreachable at once", async (t) => {
  const a = await host(t, broker.url, "a");
  const b = await host(t, broker.url, "b");
  const calls: unknown[] = [];
  b.link.serve("data", async (p) => {
    calls.push(p);
    const q = p as { run?: string; boom?: string };
    if (q.boom === "floe") throw new FloeError("E_FORM_INVALID", "missing values for x", { details: { missing: ["x"] } });
    if (q.boom === "bug") throw new TypeError("secret internals");
    return { state: "running", run: q.run };
  });
  t.throws(() => b.link.serve("data", async () => 1), { message: /already served/ });
  // serve() subscribes without waiting; a round trip makes sure the server has it.
  await b.nats.nc.flush();

  t.same(await a.link.ask("b", "data", { run: "r1", values: { x: "1" } }), { state: "running", run: "r1" });
  t.same(calls, [{ run: "r1", values: { x: "1" } }], "the handler got the payload");

  const e1 = await rejection(a.link.ask("b", "data", { boom: "floe" }));
  t.ok(e1 instanceof FloeError, "a FloeError");
  t.match(e1, { code: "E_FORM_INVALID", status: 400, message: "missing values for x", details: { missing: ["x"] } });

  const e2 = await rejection(a.link.ask("b", "data", { boom: "bug" }));
  t.match(e2, { code: "E_INTERNAL", status: 500, message: /internal error on host "b"/ });
  t.notMatch((e2 as Error).message, /secret/, "a bug's message stays on its host");

  const started = Date.now();
  const e3 = await rejection(a.link.ask("ghost", "data", {}));
  t.match(e3, { code: "E_UNAVAILABLE", status: 503, message: /host "ghost" is unreachable/ });
  t.ok(Date.now() - started < 2000, `no responders is known at once (${Date.now() - started} ms)`);
  t.match(await rejection(a.link.ask("b", "cancel", {})), { code: "E_UNAVAILABLE", message: /host "b" is unreachable/ }, "a verb b does not serve");

  // A host asking itself is answered in-process (noEcho would hide the request from it).
  t.same(await b.link.ask("b", "data", { run: "self" }), { state: "running", run: "self" });
  t.match(await rejection(b.link.ask("b", "data", { boom: "floe" })), { code: "E_FORM_INVALID" });

  // Concurrent requests all get their own answer.
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => a.link.ask("b", "data", { run: `c${i}` })));
  t.same(many, Array.from({ length: 50 }, (_, i) => ({ state: "running", run: `c${i}` })));
});

t.test("ask times out on a host that does not answer; malformed replies are errors", async (t) => {
  const a = await host(t, broker.url, "a", { askTimeoutMs: 300 });
  const b = await host(t, broker.url, "b");
  let release = () => {};
  b.link.serve("cancel", () => new Promise((r) => (release = () => r("late"))));
  await b.nats.nc.flush();
  const started = Date.now();
  t.match(await rejection(a.link.ask("b", "cancel", {})), { code: "E_UNAVAILABLE", message: /host "b" is unreachable: it did not answer within 0.3 s/ });
  t.ok(Date.now() - started < 3000);
  release();
  // A responder that does not speak the envelope.
  const raw = await connect({ servers: broker.url });
  t.teardown(() => raw.close());
  raw.subscribe(natsNames().hostVerb("weird", "data"), {
    callback: (_e, m) => {
      m.respond(JSON.stringify({ v: 1, ok: false, error: { code: "E_MADE_UP", message: "hm" } }));
    },
  });
  raw.subscribe(natsNames().hostVerb("junk", "data"), {
    callback: (_e, m) => {
      m.respond("nope");
    },
  });
  await raw.flush();
  t.match(await rejection(a.link.ask("weird", "data", {})), { code: "E_INTERNAL", message: /unknown error "E_MADE_UP": hm/ });
  t.match(await rejection(a.link.ask("junk", "data", {})), { code: "E_INTERNAL", message: /malformed reply/ });
  // And a request that does not speak it is refused.
  const r = await raw.request(natsNames().hostVerb("b", "cancel"), "garbage", { timeout: 2000 });
  t.match(JSON.parse(new TextDecoder().decode(r.data)), { v: 1, ok: false, error: { code: "E_BAD_REQUEST" } });
});

// --- hostile ids ----------------------------------------------------------------------

t.test("hostile run, node and host ids never reach other runs' or hosts' subjects", async (t) => {
  const a = await host(t, broker.url, "a");
  const b = await host(t, broker.url, "b");
  const ids = HOSTILE;
  await watchRuns(b, ids);
  for (const [i, run] of ids.entries()) {
    a.bus.publish(runEv(run, "active"));
    a.bus.publish(logEv(run, run, i + 1, `of ${i}`));
  }
  await until(() => b.seen.length >= ids.length * 2, 10_000, "B to get every hostile event");
  t.equal(b.seen.length, ids.length * 2, "each exactly once");
  t.equal(a.bus.stats.failedPublishes, 0, "a 10 kB id still makes a publishable subject");
  for (const [i, run] of ids.entries()) {
    const what = JSON.stringify(run.slice(0, 12));
    await until(async () => (await b.link.runEvents(run)).length >= 2, 10_000, `history of ${what}`);
    const evs = await b.link.runEvents(run);
    t.same(evs.map((e) => (e.type === "run" ? e.summary.ref.run : e.ref.run)), [run, run], `runEvents(${what}) holds only its own events`);
    const lines = await b.link.logs(run, run, 1, 0, 100);
    t.same(lines.map((l) => l.text), [`of ${i}`], `logs(${what}) holds only its own line`);
  }
  // A host named ">" or "*" must not answer requests meant for others.
  for (const name of [">", "*", "b.data"]) {
    const evil = await host(t, broker.url, name);
    evil.link.serve("data", async () => "stolen");
    evil.link.serve("cancel", async () => "stolen");
  }
  await until(async () => (await a.link.ask(">", "data", {})) === "stolen", 5000, "the host named > to be listening");
  t.match(await rejection(a.link.ask("nobody", "data", {})), { code: "E_UNAVAILABLE" }, "a host named > does not answer for others");
  t.match(await rejection(a.link.ask("b", "data", {})), { code: "E_UNAVAILABLE" }, "nor does b.data answer b's requests");
});

// --- outage ---------------------------------------------------------------------------

t.test("kill -9 of nats-server: publishing carries on locally, delivery resumes after restart, history kept", async (t) => {
  const own = await startNats(t.testdir({}));
  t.teardown(() => own.stop());
  const a = await host(t, own.url, "a", { outageBufferBytes: 20_000 });
  const b = await host(t, own.url, "b");
  await watchRuns(b, ["k1", "k2"]);
  for (let i = 1; i <= 50; i++) a.bus.publish(logEv("k1", "n", i));
  await until(async () => (await b.link.logs("k1", "n", 1, 0, 1000)).length === 50, 10_000, "history before the outage");
  await until(() => b.seen.length === 50, 10_000, "B's live events before the outage");

  await own.kill();
  await until(() => !a.nats.connected && !b.nats.connected, 10_000, "both hosts to notice the outage");
  const before = a.seen.length;
  for (let i = 51; i <= 550; i++) a.bus.publish(logEv("k1", "n", i, `during ${i} ${"x".repeat(100)}`));
  t.equal(a.seen.length, before + 500, "local subscribers got every event during the outage");
  t.ok(a.bus.stats.dropped > 0, `past the outage buffer, events stay local (${a.bus.stats.dropped} not shared)`);
  const asked = Date.now();
  t.match(await rejection(a.link.ask("b", "data", {})), { code: "E_UNAVAILABLE", message: /not connected to NATS/ }, "asking while NATS is away is an error, not a hang");
  t.match(await rejection(a.link.logs("k1", "n", 1, 0, 10)), { code: "E_UNAVAILABLE" }, "so is reading the history");
  t.ok(Date.now() - asked < 1000, `and both say so at once (${Date.now() - asked} ms)`);

  await own.restart();
  await until(() => a.nats.connected && b.nats.connected, 20_000, "both hosts to reconnect");
  // New events flow again: publish until B's re-sent subscription is in place.
  let k = 0;
  await until(
    () => {
      a.bus.publish(runEv(`probe${k++}`, "active"));
      return b.seen.some((e) => e.type === "run" && e.summary.ref.run.startsWith("probe"));
    },
    20_000,
    "B to receive events after the restart",
  );
  const mark = b.seen.length;
  const after: string[] = [];
  for (let i = 1; i <= 200; i++) {
    const ev = logEv("k2", "n", i);
    after.push(label(ev));
    a.bus.publish(ev);
  }
  await until(() => b.seen.length >= mark + 200, 10_000, "200 events after the restart");
  t.same(b.seen.slice(mark).map(label).filter((l) => l.startsWith("k2")), after, "in order");
  t.equal(a.bus.stats.failedPublishes, 0, "publish never threw");

  let lines: LogLine[] = [];
  await until(
    async () => {
      lines = await b.link.logs("k1", "n", 1, 0, 50).catch(() => []);
      return lines.length === 50;
    },
    20_000,
    "the history from before the restart",
  );
  t.same(lines.map((l) => l.seq), Array.from({ length: 50 }, (_, i) => i + 1), "lines published before the kill are still there");
  b.link.serve("data", async () => "back");
  await b.nats.nc.flush();
  t.equal(await a.link.ask("b", "data", {}), "back", "requests work again");
});

// --- startup refusals -----------------------------------------------------------------

t.test("a host refuses to start when NATS can not be reached", async (t) => {
  const port = await freePort();
  const started = Date.now();
  const e = await rejection(openNats(`nats://127.0.0.1:${port}`, { host: "a" }));
  t.match(e, { message: new RegExp(`^can not reach NATS at nats://127\\.0\\.0\\.1:${port}`) });
  t.match((e as Error).message, /--nats/, "and says what to fix");
  t.ok(Date.now() - started < 10_000, `within a few seconds (${Date.now() - started} ms)`);
});

t.test("a host refuses to start when NATS has JetStream off", async (t) => {
  const port = await freePort();
  const child = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await gone;
  });
  const url = `nats://127.0.0.1:${port}`;
  await until(async () => {
    const nc = await connect({ servers: url }).catch(() => undefined);
    await nc?.close();
    return nc !== undefined;
  }, 20_000, "nats-server without JetStream");
  const e = await rejection(openNats(url, { host: "a" }));
  t.match(e, { message: `NATS at ${url} has JetStream off; start nats-server with -js (floe keeps run events and logs in a stream)` });
});
