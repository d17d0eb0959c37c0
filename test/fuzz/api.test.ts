/**
 * Fuzzing every API route of a real `floe serve` process: the routes come from its own
 * GET /build/api/openapi.json; each request gets random and hostile path parameters (`..`,
 * `%2e%2e`, `%00`, 10 kB segments, Latin-1 and unicode), query strings, credentials (none,
 * garbage, a viewer's, an operator's, the admin token, malformed cookies, repeated headers),
 * bodies (random JSON values, deep nesting, huge strings, wrong types, invalid JSON, wrong
 * or missing content types) and headers. For every answer: never a 5xx, never a hang (each
 * request has a deadline), no stack trace in the body, nothing allowed without credentials
 * or with a role too small; afterwards the process is still up and serving.
 * Seeded: the seed is printed; FLOE_FUZZ_SEED repeats a run. Needs `npm run build` first.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import t from "tap";
import { errorMessage } from "../../flows/errors.js";
import { hashPassword } from "../../hub/api/passwords.js";
import { startFloe } from "../helpers/floe-process.js";
import { repoRoot } from "../helpers/paths.js";
import { rawRequest, STACK_FRAME, type RawRequest } from "./http.js";
import { fuzzRng, HOSTILE, type Rng } from "./prng.js";

const FILE = "test/fuzz/api.test.ts";
const REQUESTS = 2000;

interface Route {
  readonly method: string;
  /** With {param} placeholders. */
  readonly path: string;
  readonly role: "public" | "viewer" | "operator" | "admin";
  readonly query: readonly string[];
  readonly bodyKeys: readonly string[];
}

interface OpenApi {
  paths: Record<string, Record<string, { security?: unknown[]; "x-floe-role"?: string; parameters?: { name: string; in: string }[]; requestBody?: { content: { "application/json": { schema: { properties?: Record<string, unknown> } } } } }>>;
}

function routesOf(doc: OpenApi): Route[] {
  const out: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const role = op.security !== undefined ? "public" : ((op["x-floe-role"] ?? "viewer") as Route["role"]);
      out.push({
        method: method.toUpperCase(),
        path,
        role,
        query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
        bodyKeys: Object.keys(op.requestBody?.content["application/json"].schema.properties ?? {}),
      });
    }
  }
  return out;
}

/** Path segments that are not plain percent-encoding of a string: what path-traversal probes send. */
const RAW_SEGMENTS = ["..", ".", "%2e%2e", "%2E%2E%2F", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%5c", "..\\..\\", "%00", "a%00b", "%", "%zz", "%c0%ae%c0%ae", "%e9", "\u00e9\u00ff", "~", "*", ">", "a.b.c", "x".repeat(10_000), "%F0%9F%98%80", "%ED%A0%80", ";", "a;b=c", "?", "#", "//", "%2F", ""];

function segment(rng: Rng, valid: readonly string[]): string {
  switch (rng.int(5)) {
    case 0:
      return encodeURIComponent(rng.pick(valid));
    case 1:
      return rng.pick(RAW_SEGMENTS);
    case 2:
      // Lone surrogates can not be percent-encoded; keep their escaped form instead.
      return encodeURIComponent(rng.pick(HOSTILE).replace(/[\ud800-\udfff]/g, "\\u"));
    case 3:
      return encodeURIComponent(rng.text(24).replace(/[\ud800-\udfff]/g, "?"));
    default:
      return `${encodeURIComponent(rng.pick(valid))}${rng.pick(["", "/", "/..", "%2f..", "/./x", ".json"])}`;
  }
}

/** Any JSON value, up to `depth` levels deep. */
function jsonValue(rng: Rng, depth: number): unknown {
  const k = rng.int(depth > 0 ? 9 : 6);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.bool();
    case 2:
      return rng.pick([0, -1, 1.5, 2 ** 53 + 1, -1e308, 1e-300, 42]);
    case 3:
      return rng.pick(HOSTILE);
    case 4:
      return rng.text(30);
    case 5:
      return "";
    case 6:
      return Array.from({ length: rng.int(5) }, () => jsonValue(rng, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(6); i > 0; i--) o[rng.bool() ? rng.pick(HOSTILE).slice(0, 50) : rng.pick(["values", "reject", "trigger", "ver", "user", "password", "token", "Ref", "Run", "Form", "ID", "Values", "name", "times"])] = jsonValue(rng, depth - 1);
      return o;
    }
  }
}

function body(rng: Rng, route: Route): { body?: Buffer; type?: string } {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? "null");
  switch (rng.int(14)) {
    case 0:
      return {};
    case 1:
      return { body: Buffer.alloc(0), type: "application/json" };
    case 2:
      return { body: json(jsonValue(rng, 4)), type: "application/json" };
    case 3: {
      // The route's own keys with values of any type.
      const o: Record<string, unknown> = {};
      for (const key of route.bodyKeys) if (rng.bool(0.7)) o[key] = jsonValue(rng, 3);
      return { body: json(o), type: "application/json" };
    }
    case 4: {
      const n = rng.pick([1000, 10_000, 100_000]);
      return { body: Buffer.from(`${"[".repeat(n)}${"]".repeat(n)}`), type: "application/json" };
    }
    case 5: {
      const n = rng.pick([1000, 20_000]);
      return { body: Buffer.from(`${'{"values":'.repeat(n)}1${"}".repeat(n)}`), type: "application/json" };
    }
    case 6:
      return { body: json({ values: { name: "x".repeat(rng.pick([100_000, 900_000])) }, user: "y".repeat(5000), password: "z".repeat(5000) }), type: "application/json" };
    case 7:
      return { body: Buffer.alloc(rng.pick([(1 << 20) + 1, 3 << 20]), 0x61), type: "application/json" };
    case 8:
      return { body: json(jsonValue(rng, 3)).subarray(0, rng.range(1, 20)), type: "application/json" };
    case 9:
      return { body: rng.bytes(rng.range(1, 200)), type: "application/json" };
    case 10:
      return { body: json({ values: {} }), type: rng.pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16", "application/xml", "application/json, text/plain", "*/*", "application/jsonx", ""]) };
    case 11:
      return { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json({ values: {} })]), type: "application/json" };
    case 12:
      return { body: Buffer.from('{"__proto__": {"role": "admin"}, "constructor": {"prototype": {"x": 1}}, "values": {"__proto__": "x"}}'), type: "application/json" };
    default:
      return { body: json({ values: Object.fromEntries(Array.from({ length: rng.pick([5, 201, 5000]) }, (_, i) => [`k${i}`, i])) }), type: "application/json" };
  }
}

function query(rng: Rng, route: Route): string {
  if (rng.bool(0.4)) return "";
  const parts: string[] = [];
  for (let i = rng.range(1, 4); i > 0; i--) {
    const key = route.query.length > 0 && rng.bool(0.7) ? rng.pick(route.query) : rng.pick(["x", "__proto__", "%00", "a[b]", "wait"]);
    // A long poll holds a request up to `wait` ms: keep it short, so only a real hang is slow.
    const value = key === "wait" ? rng.pick(["0", "1", "500", "-1", "1e3", "x", "99999999"]) : rng.pick(["0", "-1", "1", "1000", "1001", "99999999999999999999", "true", "archived", "", "%00", "..%2f", encodeURIComponent(rng.text(12).replace(/[\ud800-\udfff]/g, "?")), "x".repeat(5000)]);
    parts.push(`${key}=${value}`);
  }
  return `?${parts.join("&")}`;
}

function errorShaped(body: string): boolean {
  try {
    const e = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }).error;
    return typeof e?.code === "string" && e.code.startsWith("E_") && typeof e.message === "string";
  } catch {
    return false;
  }
}

interface Creds {
  readonly name: string;
  /** Which role the server should see; undefined: none at all. */
  readonly role: Route["role"] | undefined;
  readonly headers: Record<string, string | string[]>;
}

function headerNoise(rng: Rng): Record<string, string | string[]> {
  const h: Record<string, string | string[]> = {};
  // Header values may hold any visible Latin-1; Node's client refuses control characters.
  const val = () => rng.pick(["", "x".repeat(rng.pick([10, 4000])), "\u00e9\u00ff", "() { :; }; echo pwned", "../../etc/passwd", "%00", "-1", "9999999999999999999999"]);
  if (rng.bool(0.3)) h["last-event-id"] = val();
  if (rng.bool(0.2)) h["accept-encoding"] = rng.pick(["gzip", "br, gzip;q=0", "*", val()]);
  if (rng.bool(0.2)) h["if-none-match"] = val();
  if (rng.bool(0.1)) h["x-forwarded-for"] = val();
  if (rng.bool(0.1)) h["transfer-encoding"] = "chunked";
  return h;
}

t.test("random and hostile requests on every route: no 5xx, no hang, no unauthorised success", async (t) => {
  const rng = fuzzRng(t, FILE, 1);
  const dir = t.testdir({});
  const conf = join(dir, "flows.yml");
  const users = `\n    - {name: viewer, role: viewer, password-hash: "${await hashPassword("viewer-password")}"}\n    - {name: op, role: operator, password-hash: "${await hashPassword("op-password")}"}\n`;
  writeFileSync(conf, readFileSync(resolve(repoRoot, "flows", "examples", "flows.yml"), "utf8").replace(/^  users:\n(?:    - .*\n)*/m, `  users:${users}`));
  const f = await startFloe({ conf, root: join(dir, "root") });
  t.teardown(() => f.kill9());
  const base = new URL(f.url);
  const login = async (user: string, password: string): Promise<string> => {
    const r = await rawRequest(base, { method: "POST", path: "/build/api/login", headers: { "content-type": "application/json" }, body: Buffer.from(JSON.stringify({ user, password })) });
    t.equal(r.status, 200, `${user} logs in`);
    return (JSON.parse(r.body) as { token: string }).token;
  };
  const viewer = await login("viewer", "viewer-password");
  const operator = await login("op", "op-password");
  const doc = JSON.parse((await rawRequest(base, { method: "GET", path: "/build/api/openapi.json" })).body) as OpenApi;
  const routes = routesOf(doc);
  t.ok(routes.length >= 15, `${routes.length} routes in the OpenAPI document`);
  // Real ids too, so requests also reach the handlers behind the parameter checks.
  const started = await f.req("POST", "/flows/greet/runs", { values: { name: "fuzz", times: 1 } });
  t.equal(started.status, 201, "a real run to aim at");
  const runId = (started.body as { run: { ref: { run: string } } }).run.ref.run;
  const valid = ["greet", "build-project", "release", runId, "hello", "approve", "start", "push", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "0"];

  const creds: Creds[] = [
    { name: "none", role: undefined, headers: {} },
    { name: "garbage token", role: undefined, headers: { "x-floe-auth": "not-a-token" } },
    { name: "long token", role: undefined, headers: { authorization: `Bearer ${"t".repeat(10_000)}` } },
    { name: "malformed cookie", role: undefined, headers: { cookie: "floe-sesh=%E0%A4%A; floe-sesh=; =x; a" } },
    { name: "bearer without token", role: undefined, headers: { authorization: "Bearer " } },
    { name: "basic auth", role: undefined, headers: { authorization: `Basic ${Buffer.from(`admin:${f.token}`).toString("base64")}` } },
    { name: "viewer", role: "viewer", headers: { "x-floe-auth": viewer } },
    { name: "viewer cookie", role: "viewer", headers: { cookie: `floe-sesh=${viewer}` } },
    { name: "operator", role: "operator", headers: { authorization: `Bearer ${operator}` } },
    { name: "admin", role: "admin", headers: { "x-floe-auth": f.token } },
    // Repeated headers arrive joined or as a list; neither may pass for the admin token.
    { name: "admin repeated", role: undefined, headers: { "x-floe-auth": [f.token, f.token] } },
  ];
  const rank = { public: -1, viewer: 0, operator: 1, admin: 2 } as const;

  const failures: string[] = [];
  const counts = new Map<number, number>();
  const one = async (i: number): Promise<void> => {
    const route = rng.pick(routes);
    const cred = rng.pick(creds);
    let path = `${route.path.replace(/\{[A-Za-z]+\}/g, () => segment(rng, valid))}`;
    if (rng.bool(0.1)) path = path.replace("/build/api", rng.pick(["/build/api/..", "/build/api/./", "/build//api", "/build/api%2f..", "/BUILD/API"]));
    path += query(rng, route);
    const method = rng.bool(0.9) ? route.method : rng.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);
    // HEAD never carries a body: Node's client mis-reads the answer to one that does.
    const b = method === "HEAD" ? {} : method === "GET" ? (rng.bool(0.1) ? body(rng, route) : {}) : body(rng, route);
    const headers: Record<string, string | string[]> = { ...cred.headers, ...headerNoise(rng) };
    if (b.type !== undefined && b.type !== "") headers["content-type"] = b.type;
    const req: RawRequest = { method, path, headers, ...(b.body !== undefined ? { body: b.body } : {}) };
    const what = `#${i} ${method} ${path.slice(0, 160)}${path.length > 160 ? "…" : ""} [${cred.name}] body ${b.body === undefined ? "none" : `${b.body.length} B ${b.type ?? ""}`}`;
    let res;
    try {
      res = await rawRequest(base, req);
    } catch (e) {
      // A body over the limit may be cut off by the server's 413 and close before we read it.
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === "EPIPE" || code === "ECONNRESET") && (b.body?.length ?? 0) > 1 << 20) return;
      failures.push(`${what}: ${errorMessage(e)}`);
      return;
    }
    counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
    if (res.status >= 500) failures.push(`${what}: ${res.status} ${res.body.slice(0, 300)}`);
    if (STACK_FRAME.test(res.body)) failures.push(`${what}: a stack trace in the answer`);
    // Every error with a body has floe's shape (Node's own parser errors come without one).
    if (res.status >= 400 && res.body !== "" && !errorShaped(res.body)) failures.push(`${what}: ${res.status} not in floe's error shape: ${res.body.slice(0, 200)}`);
    const allowed = route.role === "public" || (cred.role !== undefined && rank[cred.role] >= rank[route.role]);
    // A request that did not reach this route (its path broke) may answer anything but success.
    if (!allowed && method === route.method && res.status < 400) failures.push(`${what}: ${res.status} for a caller who may not (${route.role} route)`);
  };
  // Four at a time: a busy host, not a flood.
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = next++; i < REQUESTS; i = next++) await one(i);
    }),
  );
  t.comment(`statuses: ${[...counts.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(" ")}`);
  t.same(failures.slice(0, 30), [], `${failures.length} bad answers of ${REQUESTS}`);
  t.equal(f.child.exitCode, null, "the process is still running");
  t.equal((await rawRequest(base, { method: "GET", path: "/build/api/healthz" })).status, 200, "and still serving");
  t.equal((await f.req("GET", "/flows")).status, 200, "and answering the API");
  t.notMatch(f.output(), /"level":50[^\n]*request failed/, "no request failed on the host");
});
