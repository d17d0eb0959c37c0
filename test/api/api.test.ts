/** Every route over a real socket: the auth matrix, schema errors, 404s, oversize bodies; no 5xx for bad input. */
import t from "tap";
import { startApi } from "../helpers/api.js";
import { until } from "../helpers/hub.js";

const CONFIG = `
flows:
  - id: hello
    triggers:
      - name: form
        type: data
        opts:
          form:
            title: Hello
            fields:
              - {id: name, prompt: Name, type: string}
              - {id: count, prompt: Count, type: int, value: "1"}
      - {name: push, type: git-push, opts: {secret: very-secret-value}}
    tasks:
      - {name: say, type: exec, listen: trigger.good, opts: {shell: 'for i in $(seq $count); do echo "hello $name"; done'}}
      - name: approve
        type: data
        listen: task.say.good
        opts: {form: {title: OK?, fields: [{id: ok, prompt: OK, type: bool}]}}
      - {name: fin, type: end, listen: task.approve.good}
  - id: sleepy
    triggers: [{name: go, type: data}]
    tasks:
      - {name: nap, type: exec, listen: trigger.good, opts: {cmd: "sleep 60"}}
`;

type Json = Record<string, unknown>;

t.test("auth matrix", async (t) => {
  const a = await startApi(t, CONFIG);
  const login = async (user: string, password: string) => a.call("POST", "/login", { token: null, body: { user, password } });
  const tokens: Record<string, string> = {};
  for (const u of ["viewer", "operator", "boss"]) {
    const r = await login(u, `${u}-password`);
    t.equal(r.status, 200, `${u} logs in`);
    tokens[u] = (r.json as Json)["token"] as string;
    const cookie = r.headers.get("set-cookie") ?? "";
    t.match(cookie, /floe-sesh=.+; Path=\/; HttpOnly; SameSite=Strict/);
    t.notMatch(cookie, /Secure/, "no Secure flag without TLS");
  }
  t.equal((await login("viewer", "wrong")).status, 401);
  t.same(((await login("nobody", "x")).json as Json)["error"], { code: "E_UNAUTHORIZED", message: "wrong user name or password" });

  const cases: [string, string, unknown, Record<string, number>][] = [
    ["GET", "/flows", undefined, { none: 401, wrong: 401, viewer: 200, operator: 200, boss: 200, admin: 200 }],
    ["GET", "/runs", undefined, { none: 401, wrong: 401, viewer: 200, operator: 200, boss: 200, admin: 200 }],
    ["POST", "/flows/hello/runs", { values: { name: "x" } }, { none: 401, wrong: 401, viewer: 403, operator: 201, boss: 201, admin: 201 }],
    ["GET", "/hosts", undefined, { none: 401, wrong: 401, viewer: 200, operator: 200, boss: 200, admin: 200 }],
    ["GET", "/metrics", undefined, { none: 401, wrong: 401, viewer: 200, operator: 200, boss: 200, admin: 200 }],
    ["GET", "/healthz", undefined, { none: 200, wrong: 200, viewer: 200, operator: 200, boss: 200, admin: 200 }],
  ];
  const who: Record<string, string | null> = { none: null, wrong: "not-a-token", viewer: tokens["viewer"] ?? "", operator: tokens["operator"] ?? "", boss: tokens["boss"] ?? "", admin: "admin-token-for-tests-0123456789" };
  for (const [method, path, body, want] of cases) {
    for (const [w, status] of Object.entries(want)) {
      const r = await a.call(method, path, { token: who[w] ?? null, ...(body !== undefined ? { body } : {}) });
      t.equal(r.status, status, `${method} ${path} as ${w}`);
    }
  }
  // Bearer and cookie forms
  t.equal((await a.call("GET", "/flows", { token: null, headers: { authorization: `Bearer ${tokens["viewer"]}` } })).status, 200);
  t.equal((await a.call("GET", "/flows", { token: null, headers: { cookie: `floe-sesh=${tokens["viewer"]}` } })).status, 200);
  // logout ends the session
  t.equal((await a.call("POST", "/logout", { token: tokens["viewer"] ?? "" })).status, 200);
  t.equal((await a.call("GET", "/flows", { token: tokens["viewer"] ?? "" })).status, 401);
});

t.test("expired sessions and login rate limit", async (t) => {
  const a = await startApi(t, CONFIG, { sessionTtlMs: 50 });
  const r = await a.call("POST", "/login", { token: null, body: { user: "viewer", password: "viewer-password" } });
  const token = (r.json as Json)["token"] as string;
  await until(async () => (await a.call("GET", "/flows", { token })).status === 401, 5000, "expiry");
  const b = await startApi(t, CONFIG);
  let last = 0;
  for (let i = 0; i < 11; i++) last = (await b.call("POST", "/login", { token: null, body: { user: "operator", password: "nope" } })).status;
  t.equal(last, 429, "rate-limited after 10 failures");
  t.equal((await b.call("POST", "/login", { token: null, body: { user: "operator", password: "operator-password" } })).status, 429, "even the right password, for a while");
});

t.test("bad input is a 4xx with a code, never a 5xx", async (t) => {
  const a = await startApi(t, CONFIG);
  const bad: [string, string, { body?: unknown; raw?: string; headers?: Record<string, string> }, number, string][] = [
    ["POST", "/flows/hello/runs", { raw: "{not json" }, 400, "E_BAD_REQUEST"],
    ["POST", "/flows/hello/runs", { body: { values: { nope: "x" } } }, 400, "E_FORM_INVALID"],
    ["POST", "/flows/hello/runs", { body: { values: { name: "x", count: "many" } } }, 400, "E_FORM_INVALID"],
    ["POST", "/flows/hello/runs", { body: { values: {} } }, 400, "E_FORM_INVALID"],
    ["POST", "/flows/hello/runs", { body: { surprise: 1 } }, 400, "E_BAD_REQUEST"],
    ["POST", "/flows/hello/runs", { body: { values: { name: { deep: 1 } } } }, 400, "E_BAD_REQUEST"],
    ["POST", "/flows/hello/runs", { body: { trigger: "push" } }, 404, "E_TRIGGER_NOT_FOUND"],
    ["POST", "/flows/nope/runs", { body: {} }, 404, "E_FLOW_NOT_FOUND"],
    ["POST", "/flows/Bad.Id/runs", { body: {} }, 400, "E_BAD_REQUEST"],
    ["GET", "/runs/01NOPE", {}, 404, "E_RUN_NOT_FOUND"],
    ["GET", "/runs?limit=0", {}, 400, "E_BAD_REQUEST"],
    ["GET", "/runs?state=weird", {}, 400, "E_BAD_REQUEST"],
    ["GET", "/nothing-here", {}, 404, "E_NOT_FOUND"],
    ["POST", "/runs/01NOPE/cancel", {}, 404, "E_RUN_NOT_FOUND"],
    ["POST", "/login", { body: { user: "x" } }, 400, "E_BAD_REQUEST"],
    ["POST", "/push/data", { body: { Form: { ID: "form" } } }, 400, "E_BAD_REQUEST"],
    ["POST", "/flows/hello/runs", { raw: "x".repeat(2 << 20) }, 413, "E_TOO_LARGE"],
    ["POST", "/flows/hello/runs", { raw: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" } }, 400, "E_BAD_REQUEST"],
  ];
  for (const [method, path, c, status, code] of bad) {
    const r = await a.call(method, path, c);
    t.equal(r.status, status, `${method} ${path} → ${status}`);
    t.equal(((r.json as Json | undefined)?.["error"] as Json | undefined)?.["code"], code, `${method} ${path} → ${code}`);
  }
  t.equal(a.hub.listRuns({}).length, 0, "no bad request started a run");
});

t.test("a run through the API: start, log, data node, detail, cancel", async (t) => {
  const a = await startApi(t, CONFIG);
  const start = await a.call("POST", "/flows/hello/runs", { body: { values: { name: "Ada", count: 3 } } });
  t.equal(start.status, 201);
  const run = ((start.json as Json)["run"] as { ref: { run: string } }).ref.run;
  const log = await a.call("GET", `/runs/${run}/nodes/say/log?after=0&wait=20000`);
  t.equal(log.status, 200);
  await until(async () => (((await a.call("GET", `/runs/${run}/nodes/say/log?after=0`)).json as Json)["lines"] as { text: string }[]).filter((l) => l.text === "hello Ada").length === 3, 20_000, "three hellos");
  await until(async () => (((await a.call("GET", `/runs/${run}`)).json as Json)["nodes"] as { id: string; enabled?: boolean }[]).some((n) => n.id === "approve" && n.enabled === true), 20_000, "form open");
  t.equal((await a.call("POST", `/runs/${run}/nodes/say/data`, { body: { values: { ok: true } } })).status, 409, "not a data node");
  t.equal((await a.call("POST", `/runs/${run}/nodes/approve/data`, { body: { values: { ok: "maybe" } } })).status, 400);
  t.equal((await a.call("POST", `/runs/${run}/nodes/approve/data`, { body: { values: { ok: true } } })).status, 200);
  await until(async () => ((await a.call("GET", `/runs/${run}`)).json as Json)["state"] === "archived", 20_000, "end");
  const detail = (await a.call("GET", `/runs/${run}`)).json as Json;
  t.equal(detail["result"], "good");
  const approve = (detail["nodes"] as { id: string; by?: string }[]).find((n) => n.id === "approve");
  t.equal(approve?.by, "admin", "the data node records who gave its input (the admin token)");
  t.equal((await a.call("POST", `/runs/${run}/cancel`)).status, 409, "an ended run can not be cancelled");

  const sleepy = (((await a.call("POST", "/flows/sleepy/runs", { body: {} })).json as Json)["run"] as { ref: { run: string } }).ref.run;
  await until(async () => ((await a.call("GET", `/runs/${sleepy}`)).json as Json)["state"] === "active", 20_000, "active");
  const c = await a.call("POST", `/runs/${sleepy}/cancel`);
  t.equal(c.status, 200);
  t.equal((((c.json as Json)["run"]) as Json)["result"], "cancelled");

  const flows = (await a.call("GET", "/flows")).json as { flows: Json[] };
  t.equal(flows.flows.length, 2);
  t.notMatch(JSON.stringify(flows), /very-secret-value/, "no webhook secret in GET /flows");
  const one = (await a.call("GET", "/flows/hello")).json as { flow: { graph: { levels: string[][] } } };
  t.same(one.flow.graph.levels[0], ["form", "push"]);
  t.notMatch(JSON.stringify(one), /very-secret-value/);
  const openapi = (await a.call("GET", "/openapi.json", { token: null })).json as { paths: Record<string, unknown> };
  t.ok(openapi.paths["/build/api/runs/{id}/nodes/{node}/log"], "the OpenAPI document lists the routes");
  const metrics = await a.call("GET", "/metrics");
  t.match(metrics.text, /floe_runs_ended_total\{result="good"\} 1/);
  t.match(metrics.text, /floe_runs_ended_total\{result="cancelled"\} 1/);
  t.match(metrics.text, /^floe_runs\{state="archived"\} 2$/m, "the two runs, counted by the host's index");
  t.match(metrics.text, /^floe_runs\{state="pending"\} 0$/m);
  t.match(metrics.text, /^floe_pending_oldest_age_seconds 0$/m);
});

t.test("floe's POST /push/data: as a trigger and as data-node input", async (t) => {
  const a = await startApi(t, CONFIG);
  const r = await a.call("POST", "/push/data", { body: { Ref: { ID: "hello", Ver: 1 }, Form: { ID: "form", Values: { name: "Grace" } } } });
  t.equal(r.status, 201);
  const run = ((r.json as { Payload: { run: { ref: { run: string } } } }).Payload.run.ref.run);
  await until(async () => (((await a.call("GET", `/runs/${run}`)).json as Json)["nodes"] as { id: string; enabled?: boolean }[]).some((n) => n.id === "approve" && n.enabled === true), 20_000, "form open");
  const d = await a.call("POST", "/push/data", { body: { Ref: { ID: "hello", Ver: 1 }, Run: run, Form: { ID: "approve", Values: { ok: "true" } } } });
  t.equal(d.status, 200);
  t.equal((d.json as Json)["Message"], "OK");
  await until(async () => ((await a.call("GET", `/runs/${run}`)).json as Json)["result"] === "good", 20_000, "good");
});

t.test("SSE: follow a run from adoption to archive, log lines included; resume with Last-Event-ID", async (t) => {
  const a = await startApi(t, CONFIG);
  const ctrl = new AbortController();
  t.teardown(() => ctrl.abort());
  const res = await fetch(`${a.api}/events`, { headers: { "x-floe-auth": "admin-token-for-tests-0123456789" }, signal: ctrl.signal });
  t.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let buf = "";
  const events: { id: number; type: string; data: Json }[] = [];
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += new TextDecoder().decode(value);
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const id = /^id: (\d+)$/m.exec(block)?.[1];
        const type = /^event: (\w+)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (id && type && data) events.push({ id: Number(id), type, data: JSON.parse(data) as Json });
      }
    }
  })().catch(() => undefined);
  const start = await a.call("POST", "/flows/hello/runs", { body: { values: { name: "Lin" } } });
  const run = ((start.json as Json)["run"] as { ref: { run: string } }).ref.run;
  await until(() => events.some((e) => e.type === "node" && (e.data["node"] as Json)["id"] === "approve"), 20_000, "approve node event");
  await a.call("POST", `/runs/${run}/nodes/approve/data`, { body: { values: { ok: "yes" } } });
  await until(() => events.some((e) => e.type === "run" && (e.data["summary"] as Json)["state"] === "archived"), 20_000, "archive event");
  const states = events.filter((e) => e.type === "run").map((e) => (e.data["summary"] as Json)["state"]);
  t.same([...new Set(states)], ["pending", "active", "archived"]);
  t.ok(events.some((e) => e.type === "log" && ((e.data["line"] as Json)["text"] as string) === "hello Lin"), "log lines arrive");
  ctrl.abort();
  await pump;
  // Resume after the third event: exactly the rest, in order.
  const third = events[2]?.id ?? 0;
  const resumed = await fetch(`${a.api}/events?run=${run}`, { headers: { "x-floe-auth": "admin-token-for-tests-0123456789", "last-event-id": String(third) }, signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  t.ok(resumed);
  const text = await (async () => {
    let s = "";
    const r = (resumed as Response).body?.getReader();
    try {
      for (;;) {
        const { value, done } = (await r?.read()) ?? { done: true, value: undefined };
        if (done) break;
        s += new TextDecoder().decode(value);
        if (s.includes('"archived"')) break;
      }
    } catch {
      // the timeout ends the stream
    }
    return s;
  })();
  const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  t.ok(ids.length > 0 && (ids[0] ?? 0) > third, "replays from after the last seen id");
  t.same(ids, [...ids].sort((x, y) => x - y), "in order");
});
