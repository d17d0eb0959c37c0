/** flow-file loads from a local path, an http(s) URL and a git reference, and overlays the config's flow. */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import t, { type Test } from "tap";
import { parseGitRef, readFlowFile, resolveFlow } from "../../flows/flow-file.js";
import type { Flow } from "../../flows/model.js";
import { parseConfig } from "../../flows/parse.js";
import { matchTag } from "../../flows/tags.js";
import { refConfig } from "../helpers/paths.js";

const floeIn = readFileSync(refConfig("test_config_flow_test_floeIn.yml"), "utf8");

function baseFlow(ref: string): Flow {
  const res = parseConfig(`flows:\n  - id: build-project\n    ver: 3\n    reuse-space: false\n    flow-file: "${ref}"\n    triggers:\n      - name: go\n        type: data\n`, "c.yml");
  const f = res.config?.flows[0];
  if (f === undefined) throw new Error(JSON.stringify(res.diagnostics));
  return f;
}

function checkOverlay(t: Test, f: Flow): void {
  t.equal(matchTag(f, "merge.builds.good").length, 1, "tasks come from the file");
  t.same(f.resourceTags, ["couchbase", "nic"]);
  t.equal(f.ver, 3, "ver stays the config's");
  t.equal(f.triggers[0]?.id, "go", "triggers stay the config's");
  t.equal(f.reuseSpace, true, "reuse-space from the file");
}

t.test("parseGitRef", async (t) => {
  t.same(parseGitRef("git@github.com:org/repo.git/ci/FLOE.yml"), { repo: "git@github.com:org/repo.git", path: "ci/FLOE.yml" });
  t.same(parseGitRef("https://h/org/repo.git/FLOE.yml#v1.2"), { repo: "https://h/org/repo.git", path: "FLOE.yml", ref: "v1.2" });
  t.equal(parseGitRef("https://h/org/repo.git/"), undefined);
});

t.test("local, relative to the config's folder", async (t) => {
  const dir = t.testdir({ "flow.yml": floeIn });
  checkOverlay(t, await resolveFlow(baseFlow("flow.yml"), { baseDir: dir }));
  await t.rejects(resolveFlow(baseFlow("missing.yml"), { baseDir: dir }), /can not read flow-file .*missing\.yml: ENOENT/);
});

t.test("http", async (t) => {
  const server = createServer((req, res) => {
    if (req.url === "/floe.yml") res.end(floeIn);
    else if (req.url === "/bad.yml") res.end("tasks: [");
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  checkOverlay(t, await resolveFlow(baseFlow(`${base}/floe.yml`), { baseDir: "/" }));
  await t.rejects(resolveFlow(baseFlow(`${base}/nope.yml`), { baseDir: "/" }), /404/);
  await t.rejects(resolveFlow(baseFlow(`${base}/bad.yml`), { baseDir: "/" }), /is invalid: 1:\d+: YAML syntax/);
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  await t.rejects(readFlowFile(`http://127.0.0.1:${closedPort}/x.yml`, { baseDir: "/" }), /can not download flow-file .*ECONNREFUSED/);
});

t.test("git, at HEAD, a tag and a commit", async (t) => {
  const dir = t.testdir({});
  const repo = join(dir, "src");
  const git = (...args: string[]) => execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", ...args], { encoding: "utf8" }).trim();
  execFileSync("git", ["init", "-q", "-b", "main", repo]);
  execFileSync("mkdir", ["-p", join(repo, "ci")]);
  writeFileSync(join(repo, "ci", "FLOE.yml"), floeIn.replace("resource-tags: [couchbase, nic]", "resource-tags: [old]"));
  git("add", ".");
  git("commit", "-qm", "one");
  const first = git("rev-parse", "HEAD");
  git("tag", "v1");
  writeFileSync(join(repo, "ci", "FLOE.yml"), floeIn);
  git("commit", "-qam", "two");
  execFileSync("git", ["clone", "-q", "--bare", repo, join(dir, "repo.git")]);
  const url = `file://${join(dir, "repo.git")}/ci/FLOE.yml`;
  checkOverlay(t, await resolveFlow(baseFlow(url), { baseDir: "/" }));
  t.same((await resolveFlow(baseFlow(`${url}#v1`), { baseDir: "/" })).resourceTags, ["old"], "at a tag");
  t.same((await resolveFlow(baseFlow(`${url}#${first}`), { baseDir: "/" })).resourceTags, ["old"], "at a commit");
  await t.rejects(resolveFlow(baseFlow(`file://${join(dir, "repo.git")}/nope.yml`), { baseDir: "/" }), /can not read flow-file .* from git/);
});
