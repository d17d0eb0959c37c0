/** A Flow back to floe's YAML format, for `floes/<flow>/<ver>/flow.yml`. */
import { dump } from "js-yaml";
import { formatDuration } from "./duration.js";
import type { Flow, FlowNode } from "./model.js";

function nodeYaml(n: FlowNode): Record<string, unknown> {
  const o: Record<string, unknown> = { id: n.id, name: n.name };
  if (n.class === "merge") Object.assign(o, { class: "merge", type: n.type, wait: [...n.wait] });
  else o["type"] = n.type;
  if (n.class === "task") {
    o["listen"] = n.listen;
    if (n.good.length !== 1 || n.good[0] !== 0) o["good"] = [...n.good];
    if (n.ignoreFail) o["ignore-fail"] = true;
    if (n.useStatus) o["use-status"] = true;
    if (n.timeoutMs !== undefined) o["timeout"] = formatDuration(n.timeoutMs);
    if (n.retries !== undefined) o["retries"] = { max: n.retries.max, backoff: formatDuration(n.retries.backoffMs) };
    if (n.forEach !== undefined) o["for-each"] = n.forEach === "artifacts" ? n.forEach : [...n.forEach];
    if (n.parallel !== undefined) o["parallel"] = n.parallel;
  }
  if (Object.keys(n.opts).length > 0) o["opts"] = n.opts;
  return o;
}

export function flowToYaml(f: Flow): string {
  const o: Record<string, unknown> = { id: f.id, ver: f.ver, name: f.name };
  if (f.flowFile !== undefined) o["flow-file"] = f.flowFile;
  if (f.reuseSpace) o["reuse-space"] = true;
  if (f.hostTags.length) o["host-tags"] = [...f.hostTags];
  if (f.resourceTags.length) o["resource-tags"] = [...f.resourceTags];
  if (f.env.length) o["env"] = [...f.env];
  if (f.concurrency !== undefined) o["concurrency"] = f.concurrency;
  if (f.queueLimit !== undefined) o["queue-limit"] = f.queueLimit;
  if (f.queueStrategy !== "append") o["queue-strategy"] = f.queueStrategy;
  if (f.onHostLoss !== "requeue") o["on-host-loss"] = f.onHostLoss;
  if (f.timeoutMs !== undefined) o["timeout"] = formatDuration(f.timeoutMs);
  if (f.debounceMs !== undefined) o["debounce"] = formatDuration(f.debounceMs);
  if (f.onUpdate !== undefined && f.onUpdate !== "keep") o["on-update"] = f.onUpdate;
  o["triggers"] = f.triggers.map(nodeYaml);
  o["tasks"] = f.tasks.map(nodeYaml);
  return dump(o, { lineWidth: 120, noRefs: true });
}
