/**
 * Webhook requests as pure functions: who sent it (GitHub, Gitea, GitLab, or a generic
 * signed post), whether the signature over the exact raw bytes holds, and what run it asks
 * for. No HTTP framework here, so every provider's payload is testable byte for byte.
 * floe declared a git-push trigger but never had an endpoint for it (reference §2, §9.23).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { TriggerNode } from "../../flows/model.js";
import { refMatches, refPatterns, refValues } from "./refs.js";

export type Provider = "github" | "gitea" | "gitlab" | "generic";
export type Headers = Record<string, string | string[] | undefined>;

export type PushOpts = {
  readonly url: string;
  readonly branch?: string;
  readonly tag?: string;
  /** The commit (or tag object) the ref now points at. */
  readonly hash: string;
  readonly ref: string;
  readonly provider: Provider;
  readonly pusher?: string;
};

export interface WebhookInput {
  readonly headers: Headers;
  readonly rawBody: Buffer;
  readonly trigger: TriggerNode;
}

export type WebhookResult =
  | { readonly kind: "ping" }
  | { readonly kind: "ignored"; readonly reason: string }
  | { readonly kind: "push"; readonly opts: PushOpts }
  /** A generic (`type: webhook`) post: the body's top-level scalar fields, as run values. */
  | { readonly kind: "data"; readonly values: Readonly<Record<string, string | number | boolean>> }
  | { readonly kind: "rejected"; readonly status: 401 | 400; readonly code: "E_SIGNATURE" | "E_BAD_REQUEST"; readonly message: string };

type Rejected = Extract<WebhookResult, { kind: "rejected" }>;

const HEX_HASH = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const ZERO_HASH = /^0+$/;
/** Value names the hub accepts for a run without a form. */
const VALUE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function badRequest(message: string): Rejected {
  return { kind: "rejected", status: 400, code: "E_BAD_REQUEST", message };
}

function unsigned(message: string): Rejected {
  return { kind: "rejected", status: 401, code: "E_SIGNATURE", message };
}

/** Header lookup by lower-case name; repeated headers are joined as Node joins them, so they never verify. */
function headerOf(headers: Headers, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name) continue;
    return Array.isArray(v) ? v.join(", ") : v;
  }
  return undefined;
}

interface Source {
  readonly provider: Provider;
  readonly event: string;
  /** Checks the request's credentials; a message when they do not hold. */
  readonly verify: (secret: string, body: Buffer) => string | undefined;
}

function detect(h: Headers, type: TriggerNode["type"]): Source | undefined {
  if (type === "webhook") {
    // GitHub-style signatures are accepted too: many senders can only produce that header.
    const name = headerOf(h, "x-floe-signature-256") !== undefined ? "x-floe-signature-256" : "x-hub-signature-256";
    return { provider: "generic", event: "post", verify: (s, b) => verifyHmac(headerOf(h, name), "X-Floe-Signature-256", true, s, b) };
  }
  // Gitea also sends X-GitHub-Event for compatibility, so it is recognised first.
  const gitea = headerOf(h, "x-gitea-event") ?? headerOf(h, "x-gogs-event");
  if (gitea !== undefined) {
    const name = headerOf(h, "x-gitea-signature") !== undefined ? "x-gitea-signature" : "x-gogs-signature";
    return { provider: "gitea", event: gitea.trim(), verify: (s, b) => verifyHmac(headerOf(h, name), "X-Gitea-Signature", false, s, b) };
  }
  const gitlab = headerOf(h, "x-gitlab-event");
  if (gitlab !== undefined) return { provider: "gitlab", event: gitlab.trim(), verify: (s) => verifyToken(headerOf(h, "x-gitlab-token"), s) };
  const github = headerOf(h, "x-github-event");
  if (github !== undefined) {
    return { provider: "github", event: github.trim(), verify: (s, b) => verifyHmac(headerOf(h, "x-hub-signature-256"), "X-Hub-Signature-256", true, s, b) };
  }
  return undefined;
}

/**
 * HMAC-SHA256 of the raw body, compared in constant time. GitHub writes `sha256=<hex>`,
 * Gitea bare hex. The messages never echo what was sent.
 */
function verifyHmac(given: string | undefined, header: string, prefixed: boolean, secret: string, body: Buffer): string | undefined {
  if (given === undefined || given.trim() === "") return `missing ${header} header`;
  let hex = given.trim();
  if (prefixed) {
    if (!hex.toLowerCase().startsWith("sha256=")) return `${header} must be sha256=<hex digest>`;
    hex = hex.slice("sha256=".length);
  }
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return `${header} is not a SHA-256 HMAC`;
  const got = Buffer.from(hex, "hex");
  const want = createHmac("sha256", secret).update(body).digest();
  return got.length === want.length && timingSafeEqual(got, want) ? undefined : `${header} does not match the body`;
}

/** GitLab sends the secret itself; both sides are hashed first so their lengths leak nothing. */
function verifyToken(given: string | undefined, secret: string): string | undefined {
  if (given === undefined || given === "") return "missing X-Gitlab-Token header";
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(secret).digest();
  return timingSafeEqual(a, b) ? undefined : "X-Gitlab-Token does not match the trigger's secret";
}

function parseBody(raw: Buffer, contentType: string | undefined): { ok: true; value: unknown } | { ok: false; message: string } {
  let text = raw.toString("utf8");
  // GitHub can post `payload=<json>` as a form; the signature still covers the raw bytes.
  if (contentType?.toLowerCase().includes("application/x-www-form-urlencoded")) {
    const payload = new URLSearchParams(text).get("payload");
    if (payload === null) return { ok: false, message: "the form body has no payload field" };
    text = payload;
  }
  if (text.trim() === "") return { ok: false, message: "the body is empty" };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, message: "the body is not valid JSON" };
  }
}

type Json = Readonly<Record<string, unknown>>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** Verifies and reads one webhook request for `trigger` (a git-push or webhook trigger). */
export function verifyAndParse(input: WebhookInput): WebhookResult {
  const { headers, rawBody, trigger } = input;
  const secret = trigger.opts["secret"];
  if (typeof secret !== "string" || secret === "") {
    return unsigned(`trigger "${trigger.id}" has no opts.secret; unsigned webhooks are refused (set the same secret here and at the sender)`);
  }
  const source = detect(headers, trigger.type);
  if (source === undefined) return badRequest("not a push event from GitHub, Gitea or GitLab (no X-GitHub-Event, X-Gitea-Event or X-Gitlab-Event header)");
  const problem = source.verify(secret, rawBody);
  if (problem !== undefined) return unsigned(problem);

  if (source.event === "ping") return { kind: "ping" };
  const parsed = source.provider === "generic" && rawBody.length === 0 ? { ok: true as const, value: {} } : parseBody(rawBody, headerOf(headers, "content-type"));
  if (!parsed.ok) return badRequest(parsed.message);
  const body = obj(parsed.value);
  if (body === undefined) return badRequest("the body must be a JSON object");
  switch (source.provider) {
    case "generic":
      return { kind: "data", values: scalars(body) };
    case "github":
    case "gitea":
      if (source.event !== "push") return { kind: "ignored", reason: `${source.provider} event "${source.event}" is not a push` };
      return readPush(trigger, source.provider, body, {
        hash: str(body["after"]),
        deleted: body["deleted"] === true,
        cloneUrl: str(obj(body["repository"])?.["clone_url"]),
        pusher: str(obj(body["pusher"])?.["name"]) ?? str(obj(body["pusher"])?.["login"]) ?? str(obj(body["pusher"])?.["username"]) ?? str(obj(body["sender"])?.["login"]),
      });
    case "gitlab": {
      const kind = str(body["object_kind"]);
      const isPush = source.event === "Push Hook" || source.event === "Tag Push Hook" || (source.event === "System Hook" && (kind === "push" || kind === "tag_push"));
      if (!isPush) return { kind: "ignored", reason: `gitlab event "${source.event}" is not a push` };
      const after = str(body["after"]);
      // checkout_sha is null when the ref was deleted.
      return readPush(trigger, "gitlab", body, {
        hash: str(body["checkout_sha"]) ?? after,
        deleted: body["checkout_sha"] === null && (after === undefined || ZERO_HASH.test(after)),
        cloneUrl: str(obj(body["project"])?.["git_http_url"]) ?? str(obj(body["repository"])?.["git_http_url"]),
        pusher: str(body["user_username"]) ?? str(body["user_name"]),
      });
    }
  }
}

interface PushFields {
  readonly hash: string | undefined;
  readonly deleted: boolean;
  readonly cloneUrl: string | undefined;
  readonly pusher: string | undefined;
}

function readPush(trigger: TriggerNode, provider: Provider, body: Json, f: PushFields): WebhookResult {
  const ref = str(body["ref"]);
  if (ref === undefined || !ref.startsWith("refs/")) return badRequest("the push payload has no ref (refs/heads/… or refs/tags/…)");
  if (f.deleted || (f.hash !== undefined && ZERO_HASH.test(f.hash))) return { kind: "ignored", reason: `${ref} was deleted` };
  const patterns = refPatterns(trigger.opts["refs"]);
  if (!refMatches(ref, patterns)) return { kind: "ignored", reason: `${ref} does not match refs ${patterns.join(", ")}` };
  const hash = f.hash?.toLowerCase();
  if (hash === undefined || !HEX_HASH.test(hash)) return badRequest("the push payload has no commit hash (after / checkout_sha)");
  const url = str(trigger.opts["url"]) ?? f.cloneUrl;
  if (url === undefined) return badRequest("the push payload has no clone URL and the trigger has no opts.url");
  const names = refValues(ref);
  return {
    kind: "push",
    opts: {
      url,
      ...(names.branch !== undefined ? { branch: names.branch } : {}),
      ...(names.tag !== undefined ? { tag: names.tag } : {}),
      hash,
      ref,
      provider,
      ...(f.pusher !== undefined ? { pusher: f.pusher } : {}),
    },
  };
}

/** Top-level string, number and boolean fields whose names can become environment variables. */
function scalars(body: Json): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(body)) {
    if (!VALUE_NAME.test(k)) continue;
    if (typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) out[k] = v;
  }
  return out;
}

/** The delivery id a provider stamps on each request (redeliveries keep it), if any. */
export function deliveryId(headers: Headers): string | undefined {
  for (const name of ["x-github-delivery", "x-gitea-delivery", "x-gogs-delivery", "x-gitlab-event-uuid", "x-floe-delivery"]) {
    const v = headerOf(headers, name)?.trim();
    if (v !== undefined && v !== "" && v.length <= 200) return v;
  }
  return undefined;
}
