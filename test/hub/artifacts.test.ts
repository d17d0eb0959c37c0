/**
 * Artifacts on an embedded host, end to end over the real API: a task leaves files in
 * $FLOE_ARTIFACTS, a later task reads copies under $FLOE_INPUTS, the run lists them, the
 * API serves their bytes; the same bytes are stored once; pruning follows retention and
 * never removes an object a kept run references; limits and bad entries end the task bad.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { ObjectStore } from "../../store/object-store.js";
import { startApi, ADMIN, type TestApi } from "../helpers/api.js";
import { until } from "../helpers/hub.js";

type Artifact = { name: string; size: number; sha256: string };
type Node = { id: string; state: string; reason?: string; artifacts?: Artifact[] };
type Detail = { state: string; result?: string; reason?: string; nodes: Node[] };

async function runFlow(a: TestApi, flow: string): Promise<{ run: string; detail: Detail }> {
  const r = await a.call("POST", `/flows/${flow}/runs`, { body: {} });
  if (r.status !== 201) throw new Error(`trigger ${flow}: ${r.status} ${r.text}`);
  const run = (r.json as { run: { ref: { run: string } } }).run.ref.run;
  await a.end(run);
  return { run, detail: (await a.call("GET", `/runs/${run}`)).json as Detail };
}

function node(d: Detail, id: string): Node {
  const n = d.nodes.find((x) => x.id === id);
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
}

const sha = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

async function download(a: TestApi, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(`${a.api}${path}`, { headers: { "x-floe-auth": ADMIN, ...headers } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

t.test("a task's artifacts reach a later task, the run lists them, the API serves them", async (t) => {
  const dir = t.testdir({});
  const ev = join(dir, "evidence");
  const conf = `
flows:
  - id: pipe
    triggers: [{name: go, type: data}]
    tasks:
      - {name: make, type: exec, listen: trigger.good, opts: {shell: 'printf hello > "$FLOE_ARTIFACTS/a.txt"; head -c 300000 /dev/urandom > "$FLOE_ARTIFACTS/b.bin"; echo "$FLOE_ARTIFACTS" > ${ev}.dir; echo "$FLOEWS" > ${ev}.ws'}}
      - {name: use, type: exec, listen: task.make.good, opts: {shell: 'cat "$FLOE_INPUTS/make/a.txt" > ${ev}; echo >> ${ev}; sha256sum "$FLOE_INPUTS/make/b.bin" | cut -d" " -f1 >> ${ev}; ls -A "$FLOE_ARTIFACTS" | wc -l >> ${ev}; echo changed >> "$FLOE_INPUTS/make/a.txt"'}}
`;
  const a = await startApi(t, conf);
  const { run, detail } = await runFlow(a, "pipe");
  t.equal(detail.result, "good", JSON.stringify(detail));
  const made = node(detail, "make").artifacts ?? [];
  t.same(made.map((x) => x.name), ["a.txt", "b.bin"], "GET /runs/:id lists the node's artifacts by name");
  const aTxt = made.find((x) => x.name === "a.txt") as Artifact;
  const bBin = made.find((x) => x.name === "b.bin") as Artifact;
  t.same(aTxt, { name: "a.txt", size: 5, sha256: sha("hello") });
  t.equal(bBin.size, 300000);
  t.notOk(node(detail, "use").artifacts, "a task that leaves nothing lists no artifacts");
  const [text, inputHash, ownCount] = readFileSync(ev, "utf8").split("\n");
  t.equal(text, "hello", "the later task read a.txt from $FLOE_INPUTS/make/");
  t.equal(inputHash, bBin.sha256, "the later task's copy of b.bin has the recorded hash");
  t.equal(ownCount?.trim(), "0", "its own $FLOE_ARTIFACTS started empty");
  const artifactsDir = readFileSync(`${ev}.dir`, "utf8").trim();
  const ws = readFileSync(`${ev}.ws`, "utf8").trim();
  t.notOk(artifactsDir.startsWith(ws), `$FLOE_ARTIFACTS (${artifactsDir}) is outside the workspace (${ws})`);
  // Removed as the try ends, without the task's end waiting for it.
  await until(() => !existsSync(artifactsDir), 10_000, "the try's scratch directory to go");
  t.notOk(existsSync(artifactsDir), "the try's scratch directory is gone after the task");

  const store = new ObjectStore(a.root);
  t.equal(sha(readFileSync(store.pathOf(aTxt.sha256))), aTxt.sha256, "the object is intact though a task changed its input copy");

  const got = await download(a, `/runs/${run}/nodes/make/artifacts/b.bin`);
  t.equal(got.status, 200);
  t.equal(sha(got.body), bBin.sha256, "downloaded bytes hash to the recorded sha256");
  t.equal(got.headers.get("content-type"), "application/octet-stream");
  t.match(got.headers.get("content-disposition") ?? "", /^attachment; filename="b\.bin"/);
  t.equal(got.headers.get("etag"), `"${bBin.sha256}"`);
  t.equal((await download(a, `/runs/${run}/nodes/make/artifacts/b.bin`, { "if-none-match": `"${bBin.sha256}"` })).status, 304, "a matching ETag answers 304");

  const noName = await a.call("GET", `/runs/${run}/nodes/make/artifacts/nope.txt`);
  t.equal(noName.status, 404);
  t.equal((noName.json as { error: { code: string } }).error.code, "E_ARTIFACT_NOT_FOUND");
  const noNode = await a.call("GET", `/runs/${run}/nodes/ghost/artifacts/a.txt`);
  t.equal(noNode.status, 404);
  t.equal((noNode.json as { error: { code: string } }).error.code, "E_NODE_NOT_FOUND");
  const noRun = await a.call("GET", `/runs/01NOSUCHRUN/nodes/make/artifacts/a.txt`);
  t.equal(noRun.status, 404);
  t.equal((noRun.json as { error: { code: string } }).error.code, "E_RUN_NOT_FOUND");
  t.equal((await a.call("GET", `/runs/${run}/nodes/make/artifacts/a.txt`, { token: null })).status, 401, "a download needs a token");

  // A re-run from `use`: `make` is replayed, not run, and its artifacts are still the inputs.
  await a.call("POST", `/runs/${run}/rerun`, { body: { from: "use" } }).then(async (r) => {
    t.equal(r.status, 201, r.text);
    const again = (r.json as { run: { ref: { run: string } } }).run.ref.run;
    await a.end(again);
    const d = (await a.call("GET", `/runs/${again}`)).json as Detail;
    t.equal(d.result, "good", JSON.stringify(d));
    t.same(node(d, "make").artifacts, made, "the replayed node keeps its artifacts");
    const [text2, hash2] = readFileSync(ev, "utf8").split("\n");
    t.equal(text2, "hello", "the re-run's task found the replayed node's artifact under $FLOE_INPUTS");
    t.equal(hash2, bBin.sha256);
  });

  // After a restart of the host, the journal still knows them.
  await a.hub.stop(0);
  const b = await startApi(t, conf, { root: a.root });
  const after = (await b.call("GET", `/runs/${run}`)).json as Detail;
  t.same(node(after, "make").artifacts, made, "a restarted host lists them from the run's journal");
  t.equal(sha((await download(b, `/runs/${run}/nodes/make/artifacts/b.bin`)).body), bBin.sha256);
});

t.test("the same bytes made by two runs are stored once", async (t) => {
  const a = await startApi(
    t,
    `
flows:
  - id: big
    triggers: [{name: go, type: data}]
    tasks:
      - {name: make, type: exec, listen: trigger.good, opts: {shell: 'yes floe | head -c 10485760 > "$FLOE_ARTIFACTS/big.dat"'}}
`,
  );
  const one = await runFlow(a, "big");
  const two = await runFlow(a, "big");
  t.equal(one.detail.result, "good");
  t.equal(two.detail.result, "good");
  const [x] = node(one.detail, "make").artifacts ?? [];
  const [y] = node(two.detail, "make").artifacts ?? [];
  t.equal(x?.size, 10485760);
  t.equal(x?.sha256, y?.sha256, "both runs record the same object");
  t.equal(await new ObjectStore(a.root).usage(), 10485760, "the objects directory holds the 10 MiB once");
});

t.test("pruning follows retention and never removes an object a kept run references", async (t) => {
  const a = await startApi(
    t,
    `
common:
  retention: {runs: 1}
  artifacts: {grace: 1s}
flows:
  - id: keep
    triggers: [{name: go, type: data}]
    tasks:
      - {name: make, type: exec, listen: trigger.good, opts: {shell: 'echo shared > "$FLOE_ARTIFACTS/same.txt"; echo "$FLOE_RUN_ID" > "$FLOE_ARTIFACTS/own.txt"'}}
`,
  );
  const store = new ObjectStore(a.root);
  const first = await runFlow(a, "keep");
  const own1 = (node(first.detail, "make").artifacts ?? []).find((x) => x.name === "own.txt") as Artifact;
  const same = (node(first.detail, "make").artifacts ?? []).find((x) => x.name === "same.txt") as Artifact;
  t.ok(existsSync(store.pathOf(own1.sha256)));
  const second = await runFlow(a, "keep");
  const own2 = (node(second.detail, "make").artifacts ?? []).find((x) => x.name === "own.txt") as Artifact;
  t.not(own1.sha256, own2.sha256);
  t.equal((await a.call("GET", `/runs/${first.run}`)).status, 404, "the first run was pruned by retention (runs: 1)");
  await until(() => !existsSync(store.pathOf(own1.sha256)), 15_000, "the pruned run's own object to be swept");
  t.ok(existsSync(store.pathOf(same.sha256)), "the object both runs made stays: the kept run references it");
  t.ok(existsSync(store.pathOf(own2.sha256)), "the kept run's own object stays");
  // Old enough to go if nothing referenced them: a sweep now keeps them all the same.
  const old = new Date(Date.now() - 3600_000);
  for (const h of [same.sha256, own2.sha256]) utimesSync(store.pathOf(h), old, old);
  const res = await a.hub.pruneArtifacts();
  t.equal(res?.removed, 0, "a sweep removes nothing a kept run references, however old");
  t.ok(existsSync(store.pathOf(same.sha256)));
  t.ok(existsSync(store.pathOf(own2.sha256)));
  const got = await download(a, `/runs/${second.run}/nodes/make/artifacts/same.txt`);
  t.equal(got.body.toString(), "shared\n");
});

t.test("limits and bad entries end the task bad, with the reason", async (t) => {
  const a = await startApi(
    t,
    `
common:
  artifacts: {max-size: 1MiB, max-run-size: 1536KiB}
flows:
  - id: toobig
    triggers: [{name: go, type: data}]
    tasks:
      - {name: make, type: exec, listen: trigger.good, opts: {shell: 'head -c 2097152 /dev/zero > "$FLOE_ARTIFACTS/huge.bin"'}}
  - id: runcap
    triggers: [{name: go, type: data}]
    tasks:
      - {name: one, type: exec, listen: trigger.good, opts: {shell: 'head -c 900000 /dev/urandom > "$FLOE_ARTIFACTS/one.bin"'}}
      - {name: two, type: exec, listen: task.one.good, opts: {shell: 'head -c 900000 /dev/urandom > "$FLOE_ARTIFACTS/two.bin"'}}
  - id: link
    triggers: [{name: go, type: data}]
    tasks:
      - {name: make, type: exec, listen: trigger.good, opts: {shell: 'ln -s /etc/passwd "$FLOE_ARTIFACTS/passwd"; echo ok > "$FLOE_ARTIFACTS/fine.txt"'}}
  - id: subdir
    triggers: [{name: go, type: data}]
    tasks:
      - {name: make, type: exec, listen: trigger.good, opts: {shell: 'mkdir "$FLOE_ARTIFACTS/out"; echo x > "$FLOE_ARTIFACTS/out/x"'}}
`,
  );
  const big = await runFlow(a, "toobig");
  t.equal(big.detail.result, "bad");
  t.equal(node(big.detail, "make").state, "bad");
  t.match(node(big.detail, "make").reason, /"huge\.bin" is 2 MiB, over the limit of 1 MiB per artifact \(common\.artifacts\.max-size\)/);
  t.notOk(node(big.detail, "make").artifacts);

  const cap = await runFlow(a, "runcap");
  t.equal(cap.detail.result, "bad");
  t.equal(node(cap.detail, "one").state, "good");
  t.match(node(cap.detail, "two").reason, /over the limit of 1\.5 MiB per run \(common\.artifacts\.max-run-size\)/);

  const link = await runFlow(a, "link");
  t.equal(link.detail.result, "bad");
  t.match(node(link.detail, "make").reason, /"passwd" is a symbolic link; links are not followed/);
  t.notOk(node(link.detail, "make").artifacts, "nothing of a refused try is recorded");
  const log = await a.call("GET", `/runs/${link.run}/nodes/make/log`);
  t.match(log.text, /artifacts refused: \\"passwd\\" is a symbolic link/, "the reason is a line of the task's log");

  const sub = await runFlow(a, "subdir");
  t.equal(sub.detail.result, "bad");
  t.match(node(sub.detail, "make").reason, /"out" is a directory/);
});

t.test("common.artifacts is checked with its place", async (t) => {
  const { parseConfig } = await import("../../flows/parse.js");
  const res = parseConfig("common:\n  artifacts: {max-size: lots}\nflows: []\n", "x.yml");
  t.equal(res.config, undefined);
  t.match(res.diagnostics.map((d) => d.message).join("\n"), /artifacts\.max-size: "lots" is not a size; write e\.g\. 500MiB/);
  const ok = parseConfig("common:\n  artifacts: {max-size: 2GiB, max-run-size: 10GB, grace: 30m}\nflows: []\n", "x.yml");
  t.same(ok.config?.common.artifacts, { maxSize: 2 * 1024 ** 3, maxRunSize: 10 * 1000 ** 3, graceMs: 30 * 60_000 });
  const dflt = parseConfig("flows: []\n", "x.yml");
  t.same(dflt.config?.common.artifacts, { maxSize: 1024 ** 3, maxRunSize: 4 * 1024 ** 3, graceMs: 3600_000 });
});

t.test("for-each: artifacts runs once per artifact of the node that started it; the instances' artifacts are the task's", async (t) => {
  const dir = t.testdir({});
  const ev = join(dir, "evidence");
  const a = await startApi(
    t,
    `
flows:
  - id: fan
    triggers: [{name: go, type: data}]
    tasks:
      - {name: gen, type: exec, listen: trigger.good, opts: {shell: 'for n in one two three; do echo "file $n" > "$FLOE_ARTIFACTS/$n.txt"; done'}}
      - name: each
        type: exec
        listen: task.gen.good
        for-each: artifacts
        parallel: 2
        opts: {shell: 'echo "$FLOE_ITEM_NAME: $(cat "$FLOE_ITEM")" >> ${ev}; tr a-z A-Z < "$FLOE_ITEM" > "$FLOE_ARTIFACTS/up-$FLOE_ITEM_NAME"'}
      - {name: last, type: exec, listen: task.each.good, opts: {shell: 'cat "$FLOE_INPUTS/each/up-two.txt" > ${ev}.last'}}
  - id: clash
    triggers: [{name: go, type: data}]
    tasks:
      - {name: each, type: exec, listen: trigger.good, for-each: [a, b], opts: {shell: 'echo "$FLOE_ITEM" > "$FLOE_ARTIFACTS/out.txt"'}}
`,
  );
  const { detail } = await runFlow(a, "fan");
  t.equal(detail.result, "good", JSON.stringify(detail));
  const each = detail.nodes.find((n) => n.id === "each") as Node & { instances?: { item: string; name: string; state: string }[] };
  t.same(each.instances?.map((i) => [i.name, i.item, i.state]), [["one.txt", "gen/one.txt", "good"], ["three.txt", "gen/three.txt", "good"], ["two.txt", "gen/two.txt", "good"]], "one instance per artifact, in their recorded order");
  t.same(readFileSync(ev, "utf8").split("\n").filter((l) => l !== "").sort(), ["one.txt: file one", "three.txt: file three", "two.txt: file two"], "each instance read its artifact at $FLOE_ITEM");
  t.same(each.artifacts?.map((x) => x.name), ["up-one.txt", "up-three.txt", "up-two.txt"], "the task's artifacts are its instances' together");
  t.equal(readFileSync(`${ev}.last`, "utf8"), "FILE TWO\n", "a later task reads an instance's artifact under $FLOE_INPUTS/<task>/");

  const clash = await runFlow(a, "clash");
  t.equal(clash.detail.result, "bad");
  t.match(node(clash.detail, "each").reason, /instances left different files under the same name \("out\.txt"\)/);
});

t.test("a sweep keeps what an instance of a running fan-out left, however old", async (t) => {
  const dir = t.testdir({});
  const go = join(dir, "go");
  const a = await startApi(
    t,
    `
flows:
  - id: slowfan
    triggers: [{name: go, type: data}]
    tasks:
      - name: each
        type: exec
        listen: trigger.good
        for-each: [first, second]
        parallel: 1
        opts: {shell: 'echo "made by $FLOE_ITEM" > "$FLOE_ARTIFACTS/$FLOE_ITEM.txt"; if [ "$FLOE_ITEM" = second ]; then while [ ! -e ${go} ]; do sleep 0.05; done; fi'}
`,
  );
  const store = new ObjectStore(a.root);
  const r = await a.call("POST", "/flows/slowfan/runs", { body: {} });
  const run = (r.json as { run: { ref: { run: string } } }).run.ref.run;
  type Inst = { name: string; state: string };
  await until(async () => (((await a.call("GET", `/runs/${run}`)).json as { nodes: (Node & { instances?: Inst[] })[] }).nodes.find((n) => n.id === "each")?.instances ?? []).some((i) => i.name === "first" && i.state === "good"), 20_000, "the first instance to end");
  const first = sha("made by first\n");
  t.ok(existsSync(store.pathOf(first)));
  const old = new Date(Date.now() - 3 * 3600_000);
  utimesSync(store.pathOf(first), old, old);
  const res = await a.hub.pruneArtifacts();
  t.equal(res?.removed, 0);
  t.ok(existsSync(store.pathOf(first)), "referenced by the instance's journal record: kept");
  writeFileSync(go, "");
  await a.end(run);
  const d = (await a.call("GET", `/runs/${run}`)).json as Detail;
  t.equal(d.result, "good");
  t.same(node(d, "each").artifacts?.map((x) => x.sha256), [first, sha("made by second\n")]);
});
