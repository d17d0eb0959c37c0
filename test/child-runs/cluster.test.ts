/**
 * Child runs on a three-host cluster (its own nats-server and redis-server): the parent runs
 * on the one host its flow's host-tags allow, its child on the only host with the child
 * flow's tag; values and an artifact go in (its SHA-256 equal at both ends), outputs and an
 * artifact come out, across hosts; a fan-out of 20 items spreads its child runs over the
 * cluster; cancelling the parent (asked
 * of a third host) cancels the child on its host and kills its task.
 */
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

interface Detail {
  ref: { run: string; flow: string; execHost?: string };
  state: string;
  result?: string;
  reason?: string;
  parent?: { run: string; node: string };
  trigger: { values: Record<string, string> };
  nodes: { id: string; state: string; child?: string; outputs?: Record<string, string>; reason?: string; artifacts?: { name: string; sha256: string }[] }[];
}

const ev = (dir: string): string => join(dir, "evidence.log");

function conf(dir: string): string {
  return `
flows:
  - id: pipeline
    host-tags: [builder]
    triggers: [{id: go, type: data}]
    tasks:
      - {id: build, type: exec, listen: trigger.good, opts: {shell: 'echo VERSION=2.0.$(echo 7) >> $FLOE_OUTPUT; head -c 3000000 /dev/urandom > $FLOE_ARTIFACTS/app.tar; echo "made $(sha256sum < $FLOE_ARTIFACTS/app.tar | cut -d" " -f1) $FLOE_HOST" >> ${ev(dir)}'}}
      - id: deploy
        type: flow
        listen: task.build.good
        opts: {flow: deploy, values: {TARGET: eu}, pass: [FLOE_OUT_BUILD_VERSION], artifacts: [build/app.tar]}
      - {id: report, type: exec, listen: task.deploy.good, opts: {shell: 'echo "parent $FLOE_HOST saw $URL from $DEPLOYED_ON" >> ${ev(dir)}; echo "parent $FLOE_HOST got receipt $(cat $FLOE_INPUTS/deploy/receipt.txt)" >> ${ev(dir)}'}}
      - {id: done, type: end, listen: task.report.good}
  - id: deploy
    host-tags: [deployer]
    triggers: [{id: go, type: data}]
    tasks:
      - id: push
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "child $FLOE_HOST got $TARGET $FLOE_OUT_BUILD_VERSION" >> ${ev(dir)}; echo "received $(sha256sum < $FLOE_INPUTS/go/app.tar | cut -d" " -f1) $FLOE_HOST" >> ${ev(dir)}; echo "deployed on $FLOE_HOST" > $FLOE_ARTIFACTS/receipt.txt; echo URL=https://$TARGET.example/$FLOE_OUT_BUILD_VERSION >> $FLOE_OUTPUT; echo DEPLOYED_ON=$FLOE_HOST >> $FLOE_OUTPUT'}
      - {id: done, type: end, listen: task.push.good}
  - id: pipeline-slow
    host-tags: [builder]
    triggers: [{id: go, type: data}]
    tasks:
      - {id: call, type: flow, listen: trigger.good, opts: {flow: slow}}
  - id: fan
    host-tags: [builder]
    triggers: [{id: go, type: data}]
    tasks:
      - {id: each, type: flow, listen: trigger.good, for-each: [${Array.from({ length: 20 }, (_, i) => `i${i}`).join(", ")}], opts: {flow: one-item}}
  - id: one-item
    triggers: [{id: go, type: data}]
    tasks:
      - {id: work, type: exec, listen: trigger.good, opts: {shell: 'echo "item $item $FLOE_HOST" >> ${ev(dir)}; sleep 0.5; echo "host_$item=$FLOE_HOST" >> $FLOE_OUTPUT'}}
  - id: slow
    host-tags: [deployer]
    triggers: [{id: go, type: data}]
    tasks:
      - {id: wait, type: exec, listen: trigger.good, opts: {shell: 'echo "slow-start $FLOE_RUN_ID $FLOE_HOST" >> ${ev(dir)}; sleep 30; echo "slow-end $FLOE_RUN_ID" >> ${ev(dir)}'}}
`;
}

t.test("parent on one host, child on the only tagged host: values in, outputs out; cancel reaches the child", async (t) => {
  const dir = t.testdir({});
  const c = await startCluster(t, { conf: conf(dir) });
  await Promise.all([c.start({ name: "h1", tags: ["builder"] }), c.start({ name: "h2", tags: [] }), c.start({ name: "h3", tags: ["deployer"] })]);
  await c.settle(["h1", "h2", "h3"]);
  const get = async (via: string, run: string): Promise<Detail> => (await c.host(via).req("GET", `/runs/${run}`)).body as Detail;
  const ended = async (via: string, run: string): Promise<Detail> => {
    await until(async () => (await get(via, run)).state === "archived", 40_000, `run ${run} to end`);
    return get(via, run);
  };

  // Triggered on h2, which can run neither flow.
  const r = await c.host("h2").req("POST", "/flows/pipeline/runs", {});
  t.equal(r.status, 201);
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
  const parent = await ended("h2", run);
  t.equal(parent.result, "good", parent.reason ?? "");
  t.equal(parent.ref.execHost, "h1", "the parent ran on the builder");
  const deploy = parent.nodes.find((n) => n.id === "deploy");
  const child = deploy?.child;
  if (child === undefined) throw new Error("no child on the parent's node");
  t.same(deploy?.outputs, { URL: "https://eu.example/2.0.7", DEPLOYED_ON: "h3" }, "the child's outputs, carried from h3 to h1");
  const cd = await get("h2", child);
  t.equal(cd.ref.execHost, "h3", "the child ran on the only host with its tag");
  t.equal(cd.result, "good");
  t.same(cd.parent, { run, node: "deploy" });
  t.match(cd.trigger.values, { TARGET: "eu", FLOE_OUT_BUILD_VERSION: "2.0.7" });
  t.ok(evidence(ev(dir)).includes("child h3 got eu 2.0.7"), "the child's task saw the values, on h3");
  t.ok(evidence(ev(dir)).includes("parent h1 saw https://eu.example/2.0.7 from h3"), "the parent's next task saw the outputs, on h1");
  // An artifact made on h1, handed to the child on h3: the same bytes at both ends; the child's artifact back on h1.
  const made = evidence(ev(dir)).find((l) => l.startsWith("made "))?.split(" ");
  const received = evidence(ev(dir)).find((l) => l.startsWith("received "))?.split(" ");
  t.equal(made?.[2], "h1");
  t.equal(received?.[2], "h3");
  t.match(made?.[1], /^[0-9a-f]{64}$/);
  t.equal(received?.[1], made?.[1], "SHA-256 of the artifact equal on h1 (made) and h3 (read by the child)");
  t.ok(evidence(ev(dir)).includes("parent h1 got receipt deployed on h3"), "the child's artifact reached the parent's next task on h1");
  t.same(deploy?.artifacts?.map((a: { name: string }) => a.name), ["receipt.txt"]);

  // Cancel, asked of h2: the parent runs on h1, its child on h3.
  const s = await c.host("h2").req("POST", "/flows/pipeline-slow/runs", {});
  const slow = (s.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(() => evidence(ev(dir)).some((l) => l.startsWith("slow-start ")), 30_000, "the child's task to start");
  const slowChild = (await get("h2", slow)).nodes.find((n) => n.id === "call")?.child;
  if (slowChild === undefined) throw new Error("no child on the slow parent's node");
  t.ok(evidence(ev(dir)).includes(`slow-start ${slowChild} h3`), "the child runs on h3");
  const cancel = await c.host("h2").req("POST", `/runs/${slow}/cancel`, {});
  t.equal(cancel.status, 200, JSON.stringify(cancel.body));
  const p = await ended("h2", slow);
  t.equal(p.result, "cancelled");
  t.equal(p.ref.execHost, "h1");
  const ch = await ended("h1", slowChild);
  t.equal(ch.result, "cancelled");
  t.match(ch.reason, `cancelled by parent run ${slow}`);
  t.equal(ch.ref.execHost, "h3");
  t.notOk(evidence(ev(dir)).some((l) => l.startsWith("slow-end ")), "the child's task was killed");

  // A fan-out of 20 items over a flow task: a child run each, spread over the cluster.
  const f = await c.host("h2").req("POST", "/flows/fan/runs", {});
  const fan = (f.body as { run: { ref: { run: string } } }).run.ref.run;
  const fd = await ended("h2", fan);
  t.equal(fd.result, "good", fd.reason ?? "");
  const each = fd.nodes.find((n) => n.id === "each") as Detail["nodes"][number] & { instances?: { name: string; state: string; child?: string }[] };
  t.equal(each.instances?.length, 20);
  t.ok(each.instances?.every((i) => i.state === "good" && i.child !== undefined), "every instance good, each with its child");
  t.equal(new Set(each.instances?.map((i) => i.child)).size, 20, "twenty child runs");
  const ran = new Map<string, string>();
  for (const l of evidence(ev(dir))) {
    const m = /^item (i\d+) (h\d)$/.exec(l);
    if (m?.[1] !== undefined && m[2] !== undefined) ran.set(m[1], m[2]);
  }
  t.equal(ran.size, 20, "each item's task ran");
  const hosts = new Set(ran.values());
  t.ok(hosts.size > 1, `the children spread over more than one host (${[...hosts].sort().join(", ")})`);
  t.same(Object.keys(each.outputs ?? {}).length, 20, "every child's output came back");
  for (const [item, host] of ran) t.equal(each.outputs?.[`host_${item}`], host, `${item}'s output names the host it ran on`);
});
