/**
 * NATS in proportion, with real `floe serve` hosts on their own brokers: a host receives the
 * run-level events of every run, and the node events and log lines of a run executing
 * elsewhere only while something on it watches that run (here a stream of the run's events
 * through its API); the executing host sends its log lines in batches; the history of a
 * finished run still holds every line. The counts come from each host's /metrics
 * (floe_bus_*, store/nats-bus.ts).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { connect } from "@nats-io/transport-node";
import { startCluster, type Cluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

const LINES = 300;

function conf(dir: string): string {
  // Two gates per run: the lines start once the test is listening, the end once it saw them.
  return `
flows:
  - id: far
    host-tags: [gpu]
    triggers: [{name: go, type: data}]
    tasks:
      - name: talk
        type: exec
        listen: trigger.good
        opts: {shell: 'while [ ! -f ${dir}/a-$FLOE_RUN_ID ]; do sleep 0.05; done; i=0; while [ $i -lt ${LINES} ]; do i=$((i+1)); echo "line $i on $FLOE_HOST"; done; while [ ! -f ${dir}/b-$FLOE_RUN_ID ]; do sleep 0.05; done; echo "finished on $FLOE_HOST"'}
      - {name: done, type: end, listen: task.talk.good}
`;
}

/** A host's floe_bus_* figures. */
async function bus(c: Cluster, host: string): Promise<Record<string, number>> {
  const text = (await c.host(host).req("GET", "/metrics")).body as string;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^floe_bus_(\w+) (\d+(?:\.\d+)?)$/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

async function trigger(c: Cluster, via: string): Promise<string> {
  const r = await c.host(via).req("POST", "/flows/far/runs", {});
  if (r.status !== 201) throw new Error(`trigger: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { run: { ref: { run: string } } }).run.ref.run;
}

async function state(c: Cluster, via: string, run: string): Promise<string> {
  return ((await c.host(via).req("GET", `/runs/${run}`)).body as { state: string }).state;
}

type Sse = { type: string; data: { type?: string; line?: { seq: number; text: string }; node?: { id: string; state: string } | string; summary?: { state: string } } };

/** An open server-sent event stream: what came so far, and how to close it. */
function sse(c: Cluster, host: string, query: string): { events: Sse[]; close(): void; done: Promise<void> } {
  const p = c.host(host);
  const ctl = new AbortController();
  const events: Sse[] = [];
  const done = (async () => {
    const res = await fetch(`${p.api}/events?${query}`, { headers: { "x-floe-auth": p.token }, signal: ctl.signal });
    const reader = res.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (type !== undefined && data !== undefined) events.push({ type, data: JSON.parse(data) as Sse["data"] });
      }
    }
  })().catch((e: unknown) => {
    if (!ctl.signal.aborted) throw e;
  });
  return { events, close: () => ctl.abort(), done };
}

const lineSeqs = (evs: readonly Sse[]) => evs.filter((e) => e.type === "log").map((e) => e.data.line?.seq ?? -1);
const lineTexts = (evs: readonly Sse[]) => evs.filter((e) => e.type === "log").map((e) => e.data.line?.text ?? "");
/** 1, 2, … n. */
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
/** The task's own numbered lines, in order (the runner writes a line or two of its own first). */
const printed = (texts: readonly string[]) => texts.filter((x) => x.startsWith("line ")).map((x) => Number(x.split(" ")[1]));

t.test("a host hears only the run-level events of a run nobody on it watches; its stream of the run brings the rest, live, until it closes", async (t) => {
  const dir = t.testdir({});
  const c = await startCluster(t, { conf: conf(dir) });
  await Promise.all([c.start({ name: "h1", tags: ["linux"] }), c.start({ name: "h2", tags: ["gpu"] })]);
  await c.settle(["h1", "h2"]);

  // 1. Nobody on h1 watches: a run of 301 lines on h2 costs h1 its run-level events only.
  // For comparison, what a host heard before: every event of the cluster, one message each.
  const raw = await connect({ servers: c.nats.url });
  t.teardown(() => raw.close());
  let oldWay = 0;
  raw.subscribe("floe.*.ev.>", {
    callback: (_e, m) => {
      const body: unknown = JSON.parse(m.string());
      oldWay += Array.isArray(body) ? body.length : 1;
    },
  });
  await raw.flush();
  const before = await bus(c, "h1");
  const sentBefore = await bus(c, "h2");
  const quiet = await trigger(c, "h1");
  writeFileSync(join(dir, `a-${quiet}`), "");
  writeFileSync(join(dir, `b-${quiet}`), "");
  await until(async () => (await state(c, "h1", quiet)) === "archived", 30_000, "the unwatched run to end");
  const after = await bus(c, "h1");
  const sentAfter = await bus(c, "h2");
  const got = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
  await raw.flush();
  t.comment(`h1 received ${got("messages_received_total")} NATS messages (${got("events_received_total")} events) for a run of ${LINES + 1} lines on h2; the cluster's events of it: ${oldWay}, each a message to every host before`);
  t.equal(got("watched_messages_received_total"), 0, "no node event or log line of it reached h1");
  t.ok(got("messages_received_total") <= 10, `a handful of run-level events (${got("messages_received_total")})`);
  const published = (sentAfter["events_published_total"] ?? 0) - (sentBefore["events_published_total"] ?? 0);
  const sent = (sentAfter["messages_sent_total"] ?? 0) - (sentBefore["messages_sent_total"] ?? 0);
  t.comment(`h2 published ${published} events in ${sent} NATS messages`);
  t.ok(published > LINES && sent < published / 5, `log lines went in batches (${published} events, ${sent} messages)`);
  // The history of the finished run still holds every line, through the host that never heard them.
  const log = (await c.host("h1").req("GET", `/runs/${quiet}/nodes/talk/log?limit=10000`)).body as { lines: { seq: number; text: string }[] };
  t.same(log.lines.map((l) => l.seq), upTo(log.lines.length), "h1 reads all its lines from the history, numbered without a gap");
  t.same(printed(log.lines.map((l) => l.text)), upTo(LINES), "every line the task printed, in order");
  t.match(log.lines.at(-1)?.text, /finished on h2/);

  // 2. A stream of one run on h1, of a run executing on h2: node events and lines, live.
  const run = await trigger(c, "h1");
  const s = sse(c, "h1", `run=${encodeURIComponent(run)}`);
  t.teardown(() => s.close());
  await until(() => s.events.some((e) => e.type === "hello"), 10_000, "the stream to be open");
  t.equal((await bus(c, "h1"))["watched_runs"], 1, "h1 watches that run while the stream is open");
  await until(() => s.events.some((e) => e.type === "node" && typeof e.data.node === "object" && e.data.node.id === "talk" && e.data.node.state === "running"), 30_000, "talk running, on h1's stream");
  writeFileSync(join(dir, `a-${run}`), "");
  await until(() => lineTexts(s.events).some((x) => x.startsWith(`line ${LINES} `)), 30_000, `${LINES} lines on h1's stream`);
  t.same(lineSeqs(s.events), upTo(lineSeqs(s.events).length), "every line once, in order, while the task runs");
  t.same(printed(lineTexts(s.events)), upTo(LINES), "the task's lines among them");
  t.equal(await state(c, "h1", run), "active", "live: the run has not ended");
  writeFileSync(join(dir, `b-${run}`), "");
  await until(() => s.events.some((e) => e.type === "run" && e.data.summary?.state === "archived"), 30_000, "the run's end on h1's stream");
  t.same(lineSeqs(s.events), upTo(lineSeqs(s.events).length), "and the last line before its end");
  t.match(lineTexts(s.events).at(-1), /finished on h2/);
  t.ok(s.events.some((e) => e.type === "node" && typeof e.data.node === "object" && e.data.node.id === "talk" && e.data.node.state === "good"), "talk's end too");
  s.close();
  await s.done;
  await until(async () => (await bus(c, "h1"))["watched_runs"] === 0, 10_000, "h1 to drop the run's subscription once the stream closed");

  // 3. Closed: the next run's lines do not reach h1 again.
  const mark = await bus(c, "h1");
  const later = await trigger(c, "h1");
  writeFileSync(join(dir, `a-${later}`), "");
  writeFileSync(join(dir, `b-${later}`), "");
  await until(async () => (await state(c, "h1", later)) === "archived", 30_000, "the next run to end");
  t.equal(((await bus(c, "h1"))["watched_messages_received_total"] ?? 0) - (mark["watched_messages_received_total"] ?? 0), 0, "nothing of it reached h1");
});
