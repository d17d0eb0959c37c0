import { getEventListeners } from "node:events";
import { chmod, writeFile } from "node:fs/promises";
import path from "node:path";
import t from "tap";
import { killGroup, spawnLogged as spawnHere } from "../../agent/process.js";
import type { SpawnOptions, SpawnResult } from "../../agent/process.js";
import { spawnLogged as fromSpawner } from "../../agent/spawner.js";
import { alive, exists, lines, waitFor, workspace } from "./helpers.js";

function bash(script: string, over: Partial<SpawnOptions> = {}): SpawnOptions {
  return {
    cmd: "bash",
    args: ["-c", script],
    cwd: "/tmp",
    env: process.env,
    signal: new AbortController().signal,
    onLine: () => undefined,
    ...over,
  };
}


// The same behaviour whether the process is spawned by the spawn helper (as tasks are) or here.
for (const [where, spawnLogged] of [
  ["spawn helper", fromSpawner],
  ["inline", spawnHere],
] as [string, (o: SpawnOptions) => Promise<SpawnResult>][]) {
  t.test(`${where}: lines arrive in order, stdout and stderr apart`, async (t) => {
    const l = lines();
    const r = await spawnLogged(bash("printf 'a\\nb\\n'; echo oops >&2; printf 'c\\r\\nlast'", { onLine: l.onLine }));
    t.same(r, { status: 0, signal: null });
    t.same(l.texts("out"), ["a", "b", "c", "last"], "CR stripped, partial last line flushed");
    t.same(l.texts("err"), ["oops"]);
    t.ok(l.all.every((x) => typeof x.at === "number" && Math.abs(Date.now() - x.at) < 60_000));
  });

  t.test(`${where}: a 1 MiB line arrives whole`, async (t) => {
    const l = lines();
    const r = await spawnLogged(bash("head -c 1048576 /dev/zero | tr '\\0' x; echo; echo after", { onLine: l.onLine }));
    t.equal(r.status, 0);
    t.equal(l.all.length, 2);
    t.equal(l.all[0]?.text.length, 1 << 20);
    t.match(l.all[0]?.text, /^x+$/);
    t.equal(l.all[1]?.text, "after");
  });

  t.test(`${where}: 50k lines without deadlock`, async (t) => {
    const l = lines();
    const start = Date.now();
    const r = await spawnLogged(bash("seq 1 50000; seq 1 50000 >&2", { onLine: l.onLine }));
    t.equal(r.status, 0);
    t.equal(l.texts("out").length, 50000);
    t.equal(l.texts("err").length, 50000);
    t.equal(l.texts("out")[49999], "50000");
    t.ok(Date.now() - start < 10_000, "fast");
  });

  t.test(`${where}: a multibyte character split between chunks survives`, async (t) => {
    const l = lines();
    // The child writes the two bytes of "é" in separate writes, 100 ms apart.
    const js = "process.stdout.write(Buffer.from([0xc3]));setTimeout(()=>process.stdout.write(Buffer.from([0xa9,0x0a])),100)";
    const r = await spawnLogged({ ...bash(""), cmd: process.execPath, args: ["-e", js], onLine: l.onLine });
    t.equal(r.status, 0);
    t.same(l.texts("out"), ["é"]);
  });

  t.test(`${where}: exit status and signals`, async (t) => {
    t.same(await spawnLogged(bash("exit 3")), { status: 3, signal: null });
    t.same(await spawnLogged(bash("kill -KILL $$")), { status: -1, signal: "SIGKILL", reason: "killed by SIGKILL" });
  });

  t.test(`${where}: start failures are results, not exceptions`, async (t) => {
    const ws = await workspace(t);
    const ac = new AbortController();
    const base = bash("", { signal: ac.signal });
    t.same(await spawnLogged({ ...base, cmd: "floe-no-such-cmd", args: [] }), {
      status: 127,
      signal: null,
      error: "floe-no-such-cmd: command not found",
    });
    const plain = path.join(ws, "not-exec");
    await writeFile(plain, "#!/bin/sh\necho hi\n");
    await chmod(plain, 0o644);
    const r = await spawnLogged({ ...base, cmd: plain, args: [] });
    t.equal(r.status, 126);
    t.equal(r.error, `${plain}: permission denied`);
    const nodir = await spawnLogged({ ...base, cmd: "true", args: [], cwd: path.join(ws, "missing") });
    t.equal(nodir.status, 127);
    t.match(nodir.error, /no such directory/);
    await spawnLogged({ ...base, cmd: "true", args: [] });
    t.equal(getEventListeners(ac.signal, "abort").length, 0, "no abort listener left behind");
  });

  t.test(`${where}: onStart reports the group; killGroup refuses our own`, async (t) => {
    let info: { pid: number; pgid: number } | undefined;
    const r = await spawnLogged(bash("exit 0", { onStart: (i) => (info = i) }));
    t.equal(r.status, 0);
    t.ok(info !== undefined && info.pid > 1 && info.pgid === info.pid);
    t.equal(killGroup(0, "SIGTERM"), false);
    t.equal(killGroup(1, "SIGTERM"), false);
    t.equal(killGroup(-5, "SIGTERM"), false);
  });

  t.test(`${where}: abort kills the whole group, grandchildren included`, async (t) => {
    const ac = new AbortController();
    const l = lines();
    const p = spawnLogged(bash("sleep 1000 & echo $!; sleep 1000", { signal: ac.signal, onLine: l.onLine }));
    await waitFor("grandchild pid", () => l.texts("out").length > 0);
    const grandchild = Number(l.texts("out")[0]);
    t.ok(alive(grandchild));
    ac.abort(new Error("cancelled"));
    const r = await p;
    t.equal(r.status, -1);
    t.equal(r.reason, "cancelled");
    await waitFor("grandchild dead", () => !alive(grandchild));
    // Its zombie is reaped by PID 1, which in some containers takes a second or two.
    await waitFor("grandchild reaped", () => !exists(grandchild), 10_000);
    t.throws(() => process.kill(grandchild, 0), "the grandchild is gone");
  });

  t.test(`${where}: an already aborted signal starts nothing`, async (t) => {
    const r = await spawnLogged(bash("echo no", { signal: AbortSignal.abort(new Error("timed out after 1s")) }));
    t.same(r, { status: -1, signal: null, reason: "timed out after 1s" });
  });

  t.test(`${where}: SIGTERM ignored → SIGKILL after the grace`, async (t) => {
    const ac = new AbortController();
    const l = lines();
    const script = "trap '' TERM; sleep 1000 & echo $!; echo ready; wait; wait; echo survived";
    const p = spawnLogged(bash(script, { signal: ac.signal, onLine: l.onLine, killGraceMs: 200 }));
    await waitFor("ready", () => l.texts("out").includes("ready"));
    const grandchild = Number(l.texts("out")[0]);
    const start = Date.now();
    ac.abort(new Error("timed out after 2s"));
    const r = await p;
    t.ok(Date.now() - start >= 190, "waited for the grace");
    t.same(r, { status: -1, signal: "SIGKILL", reason: "timed out after 2s" });
    t.notOk(l.texts("out").includes("survived"));
    await waitFor("grandchild gone", () => !alive(grandchild));
  });

  t.test(`${where}: leader exits, a background child holds the pipes → the task still ends`, async (t) => {
    const l = lines();
    const r = await spawnLogged(bash("sleep 1000 & echo $!; echo done", { onLine: l.onLine }));
    t.equal(r.status, 0, "the leader's status");
    t.same(l.texts("out").slice(1), ["done"]);
    t.match(l.texts("sys"), [/killing its process group/]);
    const grandchild = Number(l.texts("out")[0]);
    await waitFor("grandchild gone", () => !alive(grandchild));
  });

  t.test(`${where}: …and one that also ignores SIGTERM gets SIGKILL`, async (t) => {
    const l = lines();
    const script = "(trap '' TERM; exec sleep 1000) & echo $!";
    const r = await spawnLogged(bash(script, { onLine: l.onLine, killGraceMs: 100 }));
    t.equal(r.status, 0);
    await waitFor("grandchild gone", () => !alive(Number(l.texts("out")[0])));
  });

  t.test(`${where}: pipes held outside the group are closed in the end`, async (t) => {
    const l = lines();
    // setsid puts the sleeper in its own session: no group kill reaches it.
    const r = await spawnLogged(bash("setsid sleep 1000 & echo $!", { onLine: l.onLine, killGraceMs: 100 }));
    const outsider = Number(l.texts("out")[0]);
    t.teardown(() => {
      try {
        process.kill(outsider, "SIGKILL");
      } catch {
        // already gone
      }
    });
    t.equal(r.status, 0);
    t.match(l.texts("sys"), [/killing its process group/, /closing them/]);
  });
}
