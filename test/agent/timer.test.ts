import t from "tap";
import { parseDuration } from "../../agent/duration.js";
import { runTask } from "../../agent/run-task.js";
import { runTimer } from "../../agent/timer.js";
import { lines, request, waitFor, workspace } from "./helpers.js";

t.test("parseDuration", async (t) => {
  t.equal(parseDuration("500ms"), 500);
  t.equal(parseDuration("90s"), 90_000);
  t.equal(parseDuration("2m"), 120_000);
  t.equal(parseDuration("1h30m"), 5_400_000);
  t.equal(parseDuration(90), 90_000, "a number is seconds");
  t.equal(parseDuration("10"), 10_000);
  for (const bad of ["", "abc", "5x", "1h 30m", -1, 0, null, {}]) t.equal(parseDuration(bad), undefined, JSON.stringify(bad));
});

t.test("waits the duration, then good", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const started = Date.now();
  const r = await runTimer(request(ws, { duration: "300ms" }, { type: "timer", onLine: l.onLine }));
  t.same(r, { status: 0, outputs: {} });
  t.ok(Date.now() - started >= 295, "waited");
  t.same(l.texts("sys"), ["waiting 300ms", "waited 300ms"]);
});

t.test("floe's period is seconds", async (t) => {
  const ws = await workspace(t);
  const started = Date.now();
  t.same(await runTimer(request(ws, { period: 0.2 }, { type: "timer" })), { status: 0, outputs: {} });
  t.ok(Date.now() - started >= 195);
});

t.test("an abort ends the wait with the reason", async (t) => {
  const ws = await workspace(t);
  const l = lines();
  const ac = new AbortController();
  const started = Date.now();
  const done = runTimer(request(ws, { duration: "1h" }, { type: "timer", signal: ac.signal, onLine: l.onLine }));
  await waitFor("the timer to start", () => l.texts("sys").includes("waiting 1h"));
  ac.abort(new Error("timed out after 2s"));
  t.same(await done, { status: -1, reason: "timed out after 2s", outputs: {} });
  t.ok(Date.now() - started < 5000);
  const pre = new AbortController();
  pre.abort();
  t.same(await runTimer(request(ws, { duration: "1h" }, { type: "timer", signal: pre.signal })), { status: -1, reason: "cancelled", outputs: {} });
});

t.test("a missing or bad duration is an error", async (t) => {
  const ws = await workspace(t);
  t.match((await runTimer(request(ws, {}, { type: "timer" }))).error, /timer needs opts duration/);
  t.match((await runTimer(request(ws, { duration: "soon" }, { type: "timer" }))).error, /opts.duration "soon" is not a positive duration/);
  t.match((await runTimer(request(ws, { period: 0 }, { type: "timer" }))).error, /opts.period 0/);
});

t.test("runTask dispatches on the type", async (t) => {
  const ws = await workspace(t);
  t.same(await runTask(request(ws, { duration: "10ms" }, { type: "timer" })), { status: 0, outputs: {} });
  t.equal((await runTask(request(ws, {}, { type: "fetch" }))).error, "fetch needs opts url");
  t.equal((await runTask(request(ws, {}, { type: "git-checkout" }))).error, "git-checkout needs opts url");
  t.equal((await runTask(request(ws, {}, { type: "git-merge" }))).error, "git-merge needs opts url, branch and from-branch");
  t.equal((await runTask(request(ws, {}, { type: "exec" }))).error, "exec needs opts.cmd or opts.shell");
});
