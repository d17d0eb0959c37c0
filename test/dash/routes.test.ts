/**
 * What the dashboard needs from the server, over a real socket and without a browser: the
 * shell and its assets (public, cached by ETag, gzipped, strict CSP), a token traded for a
 * session, and an event stream without log lines.
 */
import t from "tap";
import { ADMIN, startApi } from "../helpers/api.js";
import { dashConfig } from "../helpers/dash-flows.js";
import { until } from "../helpers/hub.js";

type Json = Record<string, unknown>;

t.test("the shell and its assets", async (t) => {
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  for (const page of ["/app/dash", "/app/login", "/app/flows/hello", "/app/runs/01ANY"]) {
    const r = await fetch(`${a.base}${page}`);
    t.equal(r.status, 200, `${page} needs no credentials`);
    const html = await r.text();
    t.match(html, /<meta name="floe-api" content="\/build\/api">/, "the API base is in the page");
    t.match(html, /<link rel="modulepreload" href="\/app\/assets\/page-run.js">/, "modules are preloaded");
    t.notMatch(html, /<script>|style=/, "no inline script or style");
    t.match(r.headers.get("content-security-policy") ?? "", /default-src 'none'; script-src 'self'/);
  }
  const root = await fetch(`${a.base}/`, { redirect: "manual" });
  t.equal(root.status, 302);
  t.equal(root.headers.get("location"), "/app/dash");

  const js = await fetch(`${a.base}/app/assets/app.js`, { headers: { "accept-encoding": "gzip" } });
  t.equal(js.status, 200);
  t.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  t.equal(js.headers.get("content-encoding"), "gzip", "sent compressed");
  const etag = js.headers.get("etag") ?? "";
  t.match(await js.text(), /createApi/, "fetch decodes it");
  const again = await fetch(`${a.base}/app/assets/app.js`, { headers: { "if-none-match": etag } });
  t.equal(again.status, 304, "unchanged assets are not sent again");
  t.equal((await fetch(`${a.base}/app/assets/..%2Fpackage.json`)).status, 404, "only the assets");
  t.equal((await fetch(`${a.base}/app/assets/nope.js`)).status, 404);
  t.equal((await fetch(`${a.base}/app/unknown`)).status, 404);
});

t.test("a token traded for a session; the stream without log lines", async (t) => {
  const a = await startApi(t, dashConfig(t.testdir()), { dashboard: true });
  t.equal((await a.call("POST", "/login", { token: null, body: { token: "wrong-token" } })).status, 401);
  t.equal((await a.call("POST", "/login", { token: null, body: { user: "x" } })).status, 400, "a user needs a password");
  const r = await a.call("POST", "/login", { token: null, body: { token: ADMIN } });
  t.equal(r.status, 200);
  const body = r.json as Json;
  t.match(body, { user: "admin", role: "admin" });
  t.not(body["token"], ADMIN, "a session of its own, not the admin token");
  t.match(r.headers.get("set-cookie") ?? "", /^floe-sesh=[^;]+; Path=\/; HttpOnly; SameSite=Strict/);
  t.notMatch(r.headers.get("set-cookie") ?? "", new RegExp(ADMIN), "the admin token is not in the cookie");
  const sesh = String(body["token"]);
  t.equal((await a.call("GET", "/whoami", { token: sesh })).status, 200);
  t.equal((await a.call("POST", "/logout", { token: sesh })).status, 200);
  t.equal((await a.call("GET", "/whoami", { token: sesh })).status, 401, "logout ends that session");
  t.equal((await a.call("GET", "/whoami")).status, 200, "and not the admin token");

  const ctrl = new AbortController();
  t.teardown(() => ctrl.abort());
  const res = await fetch(`${a.api}/events?logs=false`, { headers: { "x-floe-auth": ADMIN }, signal: ctrl.signal });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let text = "";
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += new TextDecoder().decode(value);
    }
  })().catch(() => undefined);
  const start = await a.call("POST", "/flows/hello/runs", { body: { values: { name: "Sam" } } });
  t.equal(start.status, 201);
  await until(() => /"id":"approve"/.test(text), 20_000, "the approve node's event");
  t.match(text, /event: node/);
  t.notMatch(text, /event: log/, "no log lines");
  ctrl.abort();
  await pump;
});
