/**
 * Webhook deliveries modelled on each provider's documented push format, signed (or not)
 * exactly as the provider signs them.
 */
import { createHmac } from "node:crypto";
import type { Headers } from "../../hub/triggers/webhook.js";

export const SECRET = "It's a Secret to Everybody";
export const SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
export const OLD = "95790bf891e76fee5e1747ab589903a6a1f80f22";
export const ZERO = "0000000000000000000000000000000000000000";

export const hmac = (body: Buffer | string, secret = SECRET): string => createHmac("sha256", secret).update(body).digest("hex");

/** GitHub's push event (docs: webhook-events-and-payloads#push). */
export function githubPush(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ref: "refs/heads/main",
    before: OLD,
    after: SHA,
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    compare: `https://github.com/octo-org/hello-world/compare/${OLD.slice(0, 12)}...${SHA.slice(0, 12)}`,
    commits: [{ id: SHA, tree_id: OLD, distinct: true, message: "Fix the thing", timestamp: "2026-11-22T11:18:25Z", author: { name: "Mona", email: "mona@example.com", username: "mona" }, added: [], removed: [], modified: ["README.md"] }],
    head_commit: { id: SHA, message: "Fix the thing" },
    repository: { id: 1296269, name: "hello-world", full_name: "octo-org/hello-world", private: false, html_url: "https://github.com/octo-org/hello-world", clone_url: "https://github.com/octo-org/hello-world.git", ssh_url: "git@github.com:octo-org/hello-world.git", default_branch: "main" },
    pusher: { name: "mona", email: "mona@example.com" },
    sender: { login: "mona", id: 1, type: "User" },
    ...over,
  };
}

/** A GitHub delivery: `X-GitHub-Event`, `X-GitHub-Delivery`, `X-Hub-Signature-256: sha256=<hex>`. */
export function github(event: string, body: unknown, o: { secret?: string; sign?: Buffer | string | false; delivery?: string } = {}): { headers: Headers; rawBody: Buffer } {
  const rawBody = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  const headers: Headers = { "content-type": "application/json", "user-agent": "GitHub-Hookshot/abc", "x-github-event": event, "x-github-delivery": o.delivery ?? crypto.randomUUID(), "x-github-hook-id": "42" };
  if (o.sign !== false) headers["x-hub-signature-256"] = `sha256=${hmac(o.sign ?? rawBody, o.secret)}`;
  return { headers, rawBody };
}

/** Gitea's push event: it sends X-Gitea-*, X-Gogs-* and X-GitHub-Event; X-Gitea-Signature is bare hex. */
export function gitea(body: unknown, o: { secret?: string; sign?: boolean } = {}): { headers: Headers; rawBody: Buffer } {
  const rawBody = Buffer.from(JSON.stringify(body));
  const headers: Headers = { "content-type": "application/json", "x-gitea-event": "push", "x-gitea-event-type": "push", "x-gitea-delivery": crypto.randomUUID(), "x-gogs-event": "push", "x-github-event": "push" };
  if (o.sign !== false) {
    headers["x-gitea-signature"] = hmac(rawBody, o.secret);
    headers["x-gogs-signature"] = hmac(rawBody, o.secret);
  }
  return { headers, rawBody };
}

export function giteaPush(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ref: "refs/heads/develop",
    before: OLD,
    after: SHA,
    compare_url: "http://localhost:3000/gitea/webhooks/compare/28e1879d029cb852e4844d9c718537df08844e03...bffeb74224043ba2feb48d137756c8a9331c449a",
    commits: [{ id: SHA, message: "Webhooks Yay!", url: `http://localhost:3000/gitea/webhooks/commit/${SHA}`, author: { name: "Gitea", email: "someone@gitea.io", username: "gitea" } }],
    repository: { id: 140, name: "webhooks", full_name: "gitea/webhooks", html_url: "http://localhost:3000/gitea/webhooks", clone_url: "http://localhost:3000/gitea/webhooks.git", ssh_url: "ssh://gitea@localhost:2222/gitea/webhooks.git", default_branch: "master" },
    pusher: { id: 1, login: "gitea", full_name: "Gitea", email: "someone@gitea.io", username: "gitea" },
    sender: { id: 1, login: "gitea", username: "gitea" },
    ...over,
  };
}

/** GitLab's push event (docs: webhook_events#push-events): `X-Gitlab-Event: Push Hook`, the secret in `X-Gitlab-Token`. */
export function gitlabPush(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    object_kind: "push",
    event_name: "push",
    before: OLD,
    after: SHA,
    ref: "refs/heads/master",
    ref_protected: true,
    checkout_sha: SHA,
    user_id: 4,
    user_name: "John Smith",
    user_username: "jsmith",
    user_email: "john@example.com",
    project_id: 15,
    project: { id: 15, name: "Diaspora", web_url: "http://example.com/mike/diaspora", git_ssh_url: "git@example.com:mike/diaspora.git", git_http_url: "http://example.com/mike/diaspora.git", namespace: "Mike", path_with_namespace: "mike/diaspora", default_branch: "master" },
    repository: { name: "Diaspora", url: "git@example.com:mike/diaspora.git", homepage: "http://example.com/mike/diaspora", git_http_url: "http://example.com/mike/diaspora.git", git_ssh_url: "git@example.com:mike/diaspora.git" },
    commits: [{ id: SHA, message: "Update Catalan translation", author: { name: "Jordi Mallach", email: "jordi@softcatala.org" } }],
    total_commits_count: 1,
    ...over,
  };
}

export function gitlab(event: string, body: unknown, token: string | null = SECRET): { headers: Headers; rawBody: Buffer } {
  const headers: Headers = { "content-type": "application/json", "x-gitlab-event": event, "x-gitlab-event-uuid": crypto.randomUUID(), "x-gitlab-instance": "https://gitlab.example.com" };
  if (token !== null) headers["x-gitlab-token"] = token;
  return { headers, rawBody: Buffer.from(JSON.stringify(body)) };
}
