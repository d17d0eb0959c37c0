/**
 * A NATS cluster of three servers with the event stream kept in three copies
 * (`--stream-replicas=3`): the server leading the stream is killed with -9 while runs are
 * being triggered and are printing. Nothing adopted is lost — every run answered 201 ends
 * good, its task ran once (its own evidence) — and every run's log stays readable, whole and
 * in order, from both hosts. Then the server comes back and the next round kills the new
 * leader (FLOE_NATS_LOSS_ROUNDS rounds, 2 by default).
 */
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { natsNames } from "../../store/nats-subjects.js";
import { evidence, startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

const ROUNDS = Number(process.env["FLOE_NATS_LOSS_ROUNDS"] ?? 2);
const RUNS_PER_ROUND = 24;
const LINES = 12;

t.test("the NATS server leading the event stream dies mid-workload: no run lost, logs whole", async (t) => {
  const dir = t.testdir();
  const ev = join(dir, "evidence.log");
  const c = await startCluster(t, {
    natsNodes: 3,
    hostArgs: ["--stream-replicas=3"],
    conf: `
flows:
  - id: talk
    triggers: [{name: go, type: data}]
    tasks:
      - {name: say, type: exec, listen: trigger.good, opts: {shell: 'for i in $(seq 1 ${LINES}); do echo "line $i of $FLOE_RUN_ID"; sleep 0.03; done; echo "done $FLOE_RUN_ID $FLOE_HOST" >> ${ev}'}}
`,
  });
  await c.start({ name: "h1", slots: 4 });
  await c.start({ name: "h2", slots: 4 });
  await c.settle(["h1", "h2"]);

  const stream = natsNames("floe").stream;
  const streamInfo = async () => {
    const live = c.natsNodes.filter((_, i) => !down.has(i)).map((b) => b.url);
    const nc = await connect({ servers: live, timeout: 3000 });
    try {
      return await (await jetstreamManager(nc, { timeout: 3000 })).streams.info(stream);
    } finally {
      await nc.close();
    }
  };
  const down = new Set<number>();
  const first = await streamInfo();
  t.equal(first.config.num_replicas, 3, "the stream is kept in three copies (--stream-replicas=3)");

  const adopted: string[] = [];
  const refused: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const leaderName = await (async () => {
      let name: string | undefined;
      await until(async () => ((name = (await streamInfo().catch(() => undefined))?.cluster?.leader) ?? "") !== "", 20_000, "the stream to have a leader");
      return name as string;
    })();
    const victim = Number(/^n(\d+)$/.exec(leaderName)?.[1]) - 1;
    t.ok(victim >= 0 && victim < 3, `round ${round}: the stream's leader is ${leaderName}`);
    for (let i = 0; i < RUNS_PER_ROUND; i++) {
      if (i === RUNS_PER_ROUND / 3) {
        down.add(victim);
        await c.natsNodes[victim]?.kill();
      }
      const via = i % 2 === 0 ? "h1" : "h2";
      const r = await c.host(via).req("POST", "/flows/talk/runs", { values: {} });
      if (r.status === 201) adopted.push((r.body as { run: { ref: { run: string } } }).run.ref.run);
      else refused.push(`${via}: ${r.status} ${JSON.stringify(r.body)}`);
      await new Promise((res) => setTimeout(res, 40));
    }
    await until(async () => {
      for (const run of adopted) {
        const s = (await c.host("h1").req("GET", `/runs/${run}`)).body as { state?: string };
        if (s.state !== "archived") return false;
      }
      return true;
    }, 90_000, `round ${round}: every adopted run to end`);
    await c.natsNodes[victim]?.restart();
    down.delete(victim);
    await until(async () => {
      // Right after a restart the servers may still be electing: a timeout is asked again.
      const si = await streamInfo().catch(() => undefined);
      if (si === undefined) return false;
      return (si.cluster?.replicas ?? []).length === 2 && (si.cluster?.replicas ?? []).every((p) => p.current);
    }, 60_000, `round ${round}: the restarted server to catch up with the stream`);
  }

  const last = await streamInfo();
  t.comment(`the stream holds ${last.state.messages} events, ${last.state.bytes} bytes, for ${adopted.length} runs of ${LINES} lines: ${Math.round(last.state.bytes / adopted.length)} bytes a run`);
  t.same(refused, [], "no trigger was refused while a NATS server was down");
  t.equal(adopted.length, ROUNDS * RUNS_PER_ROUND);
  const done = evidence(ev);
  for (const run of adopted) {
    for (const via of ["h1", "h2"]) {
      const s = (await c.host(via).req("GET", `/runs/${run}`)).body as { state?: string; result?: string };
      t.equal(s.result, "good", `run ${run} ended good (seen from ${via})`);
      const want = Array.from({ length: LINES }, (_, i) => `line ${i + 1} of ${run}`);
      const read = async () => {
        const log = (await c.host(via).req("GET", `/runs/${run}/nodes/say/log`)).body as { lines?: { stream: string; text: string }[] };
        return (log.lines ?? []).filter((l) => l.stream === "out").map((l) => l.text);
      };
      // Lines the dead server did not confirm are sent again after a backoff: they may land
      // seconds after the run ended, so the log is read until it is whole (or a minute passed).
      await until(async () => JSON.stringify(await read()) === JSON.stringify(want), 60_000, `the log of ${run} read from ${via}`).catch(() => undefined);
      t.same(await read(), want, `run ${run}: its log read from ${via} is whole and in order`);
    }
    t.equal(done.filter((l) => l.startsWith(`done ${run} `)).length, 1, `run ${run}: its task ran once`);
  }
});
