/** A flow as the API shows it: no secrets (webhook secrets, key paths), with its graph and forms. */
import { readForm } from "../../flows/forms.js";
import { buildGraph } from "../../flows/graph.js";
import type { Flow, FlowNode } from "../../flows/model.js";

const SECRET_OPTS = new Set(["secret", "key-file", "password", "token"]);

function publicOpts(opts: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) if (!SECRET_OPTS.has(k.toLowerCase())) out[k] = v;
  return out;
}

function publicNode(n: FlowNode): Record<string, unknown> {
  const base: Record<string, unknown> = { id: n.id, name: n.name, class: n.class, type: n.type, opts: publicOpts(n.opts) };
  if (n.class === "task") Object.assign(base, { listen: n.listen, good: n.good, ignoreFail: n.ignoreFail, useStatus: n.useStatus, ...(n.timeoutMs ? { timeoutMs: n.timeoutMs } : {}), ...(n.retries ? { retries: n.retries } : {}) });
  if (n.class === "merge") base["wait"] = n.wait;
  const form = readForm(n.opts).form;
  if (form !== undefined) base["form"] = form;
  if (n.class === "trigger" && (n.type === "git-push" || n.type === "webhook")) base["secured"] = typeof n.opts["secret"] === "string";
  return base;
}

export function flowSummary(f: Flow): Record<string, unknown> {
  return {
    id: f.id,
    ver: f.ver,
    name: f.name,
    hostTags: f.hostTags,
    resourceTags: f.resourceTags,
    reuseSpace: f.reuseSpace,
    triggers: f.triggers.map(publicNode),
    // Names only: a secret's value never leaves the host that reads it.
    secrets: f.secrets ?? [],
  };
}

/** Where a flow notifies: the URL's origin only (a Slack webhook's path is its credential). */
function publicNotify(f: Flow): Record<string, unknown>[] {
  return (f.notify ?? []).map((n) => {
    let origin = "(invalid URL)";
    try {
      origin = new URL(n.url).origin;
    } catch {
      // validated at load; a snapshot from elsewhere may not be
    }
    return { url: origin, on: n.on, format: n.format, signed: n.secret !== undefined, ...(n.secret !== undefined ? { secret: n.secret } : {}) };
  });
}

export function flowDefinition(f: Flow): Record<string, unknown> {
  return {
    ...flowSummary(f),
    env: f.env,
    ...(f.flowFile !== undefined ? { flowFile: f.flowFile } : {}),
    ...(f.concurrency !== undefined ? { concurrency: f.concurrency } : {}),
    ...(f.queueLimit !== undefined ? { queueLimit: f.queueLimit, queueStrategy: f.queueStrategy } : {}),
    ...(f.queueStrategy === "debounce" ? { queueStrategy: f.queueStrategy, ...(f.debounceMs !== undefined ? { debounceMs: f.debounceMs } : {}) } : {}),
    onHostLoss: f.onHostLoss,
    onUpdate: f.onUpdate ?? "keep",
    ...(f.timeoutMs !== undefined ? { timeoutMs: f.timeoutMs } : {}),
    notify: publicNotify(f),
    tasks: f.tasks.map(publicNode),
    graph: buildGraph(f),
  };
}
