/**
 * The dashboard: one HTML shell for every /app page, and its assets — plain ES modules and
 * CSS under hub/dash/assets, served as they are (no bundler, no build step, nothing fetched
 * from outside the host). The pages load without credentials: they ask the API who is
 * calling and log in through it, so every action stays behind the API's own auth and roles.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

interface Asset {
  readonly body: Buffer;
  readonly gzipped?: Buffer;
  readonly type: string;
  readonly etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".html": "text/html; charset=utf-8",
};

/** The pages the client-side router knows; each gets the same shell. */
const PAGES = ["/app/dash", "/app/login", "/app/flows/:id", "/app/runs/:id"] as const;

// Only this host's own files, no inline script or style, and no framing: a page that shows
// task output written by anyone must not be able to run it.
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

/**
 * hub/dash/assets of the package this module belongs to. The module runs from the source
 * tree (tests) or from dist/ (the built CLI); both sit below the directory holding
 * package.json, and the assets are not copied into dist.
 */
export function assetsDir(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "hub", "dash", "assets");
    const up = dirname(dir);
    if (up === dir) throw new Error(`floe: no package.json above ${from}; can not find the dashboard's assets`);
    dir = up;
  }
}

function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(dir, name));
    const gz = gzipSync(body, { level: 9 });
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    out.set(name, { body, type, etag, ...(gz.length < body.length ? { gzipped: gz } : {}) });
  }
  return out;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** index.html with the API base and a modulepreload for every module, so they load in parallel. */
function renderShell(template: string, base: string, modules: readonly string[]): string {
  const preload = modules.map((m) => `<link rel="modulepreload" href="/app/assets/${escapeHtml(m)}">`).join("\n");
  return template.replaceAll("__FLOE_API__", escapeHtml(base)).replace("<!--PRELOAD-->", preload);
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset): FastifyReply {
  reply.headers(SECURITY_HEADERS).header("cache-control", "no-cache").header("etag", a.etag).header("vary", "accept-encoding");
  if (req.headers["if-none-match"] === a.etag) return reply.code(304).send();
  reply.type(a.type);
  const accept = req.headers["accept-encoding"];
  if (a.gzipped !== undefined && typeof accept === "string" && /\bgzip\b/.test(accept)) return reply.header("content-encoding", "gzip").send(a.gzipped);
  return reply.send(a.body);
}

export function registerDashboard(app: FastifyInstance, o: { base: string }): void {
  const dir = assetsDir();
  const assets = loadAssets(dir);
  const template = assets.get("index.html");
  if (template === undefined) throw new Error(`floe: ${join(dir, "index.html")} is missing`);
  assets.delete("index.html");
  const modules = [...assets.keys()].filter((n) => n.endsWith(".js")).sort();
  const html = Buffer.from(renderShell(template.body.toString("utf8"), o.base, modules));
  const shell: Asset = { body: html, type: TYPES[".html"] ?? "text/html", etag: `"${createHash("sha256").update(html).digest("base64url").slice(0, 22)}"` };

  const pub = { config: { role: "public" as const } };
  const toDash = async (_req: FastifyRequest, reply: FastifyReply) => reply.redirect("/app/dash");
  app.get("/", pub, toDash);
  app.get("/app", pub, toDash);
  app.get("/app/", pub, toDash);
  for (const page of PAGES) app.get(page, pub, async (req, reply) => send(req, reply, shell));
  app.get<{ Params: { file: string } }>("/app/assets/:file", pub, async (req, reply) => {
    const a = assets.get(req.params.file);
    if (a === undefined) return reply.code(404).type("text/plain").send("not found");
    return send(req, reply, a);
  });
}
