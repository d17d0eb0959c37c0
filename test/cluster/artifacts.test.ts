/**
 * Artifacts across a cluster (own nats-server and redis-server, two `floe serve` hosts): an
 * artifact made on h1 is downloaded through h2's API, and — with h1 killed -9 — consumed by
 * a task of a re-run on h2, which fetches it from the cluster's bucket; the SHA-256 is the
 * same at every end.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { evidence, startCluster } from "../helpers/cluster.js";
import { until } from "../helpers/hub.js";

type Artifact = { name: string; size: number; sha256: string };
type Detail = { state: string; result?: string; ref: { execHost?: string }; nodes: { id: string; state: string; artifacts?: Artifact[] }[] };

t.test("an artifact made on one host is fetched by another host's API and task", async (t) => {
  const evDir = t.testdir({});
  const ev = join(evDir, "evidence.log");
  const c = await startCluster(t, {
    conf: `
flows:
  - id: pipe
    host-tags: [shared]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: make, type: exec, listen: trigger.good, opts: {shell: 'head -c 2500000 /dev/urandom > "$FLOE_ARTIFACTS/data.bin"; echo "made on $FLOE_HOST $(sha256sum "$FLOE_ARTIFACTS/data.bin" | cut -d" " -f1)" >> ${ev}'}}
      - {name: use, type: exec, listen: task.make.good, opts: {shell: 'echo "used on $FLOE_HOST $(sha256sum "$FLOE_INPUTS/make/data.bin" | cut -d" " -f1)" >> ${ev}'}}
`,
  });
  // Only h1 can take the first run: h2 joins once it has ended.
  await c.start({ name: "h1", tags: ["shared"] });
  await c.settle(["h1"]);
  const h1 = c.host("h1");
  const r = await h1.req("POST", "/flows/pipe/runs", {});
  t.equal(r.status, 201);
  const run = (r.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await h1.req("GET", `/runs/${run}`)).body as Detail).state === "archived", 30_000, "the first run to end on h1");
  const d1 = (await h1.req("GET", `/runs/${run}`)).body as Detail;
  t.equal(d1.result, "good", JSON.stringify(d1));
  t.equal(d1.ref.execHost, "h1");
  const art = d1.nodes.find((n) => n.id === "make")?.artifacts?.[0];
  t.equal(art?.name, "data.bin");
  const made = evidence(ev).find((l) => l.startsWith("made on h1 "))?.split(" ")[3];
  t.equal(art?.sha256, made, "the recorded hash is the hash of the file the task made");

  await c.start({ name: "h2", tags: ["shared"] });
  await c.settle(["h1", "h2"]);
  const h2 = c.host("h2");
  const h2root = join(c.dir, "root-h2");
  const objectPath = join(h2root, "objects", String(made).slice(0, 2), String(made).slice(2, 4), String(made));
  t.notOk(existsSync(objectPath), "h2 does not have the object yet");
  const res = await fetch(`${h2.api}/runs/${run}/nodes/make/artifacts/data.bin`, { headers: { "x-floe-auth": h2.token } });
  t.equal(res.status, 200);
  const bytes = Buffer.from(await res.arrayBuffer());
  t.equal(bytes.length, 2500000);
  t.equal(createHash("sha256").update(bytes).digest("hex"), made, "h2's API serves the bytes h1's task made");
  t.ok(existsSync(objectPath), "h2 fetched the object into its own store");

  // h1 is gone: the re-run runs on h2, and its task gets the input from the bucket.
  await c.kill9("h1");
  // Once the cluster knows h1 is lost (a pend adopted before that may wait for h1's wake-up).
  await until(async () => ((await h2.req("GET", "/hosts")).body as { hosts: { name: string; up: boolean }[] }).hosts.every((h) => h.name !== "h1" || !h.up), 20_000, "h2 to see h1 down");
  const rm = await import("node:fs/promises");
  await rm.rm(join(h2root, "objects"), { recursive: true, force: true });
  const rr = await h2.req("POST", `/runs/${run}/rerun`, { from: "use" });
  t.equal(rr.status, 201, JSON.stringify(rr.body));
  const again = (rr.body as { run: { ref: { run: string } } }).run.ref.run;
  await until(async () => ((await h2.req("GET", `/runs/${again}`)).body as Detail).state === "archived", 40_000, "the re-run to end on h2");
  const d2 = (await h2.req("GET", `/runs/${again}`)).body as Detail;
  t.equal(d2.result, "good", JSON.stringify(d2));
  t.equal(d2.ref.execHost, "h2");
  t.same(d2.nodes.find((n) => n.id === "make")?.artifacts, d1.nodes.find((n) => n.id === "make")?.artifacts, "the replayed node keeps its artifacts");
  const used = evidence(ev).filter((l) => l.startsWith("used on h2 "));
  t.same(used, [`used on h2 ${String(made)}`], "the task on h2 read the bytes h1 made, fetched from the cluster");
  t.equal(createHash("sha256").update(readFileSync(objectPath)).digest("hex"), made, "and h2's store holds them again");
});
