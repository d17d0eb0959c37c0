/**
 * Flow file text → a frozen Config (or, for a flow-file, one Flow), with every problem of
 * the file reported at once.
 */
import { checkFlow } from "./check.js";
import { checkFlowRefs, type FlowRef } from "./check-flow-refs.js";
import { Diagnostics, LineIndex, type Diagnostic } from "./diagnostics.js";
import { deriveIdName } from "./ids.js";
import { parseByteSize } from "./byte-size.js";
import { DEFAULT_ARTIFACTS, DEFAULT_BASE_URL, DEFAULT_RETENTION, deepFreeze, type ArtifactSettings, flowKey, type Common, type Config, type Flow, type FlowNode, type MergeNode, type OnHostLoss, type OnUpdate, type QueueStrategy, type Role, type TaskNode, type TriggerNode, type User } from "./model.js";
import { parseNode, type NodePlaces } from "./parse-node.js";
import { parseFlowOps, parseNotifySettings, parseSecretsConfig } from "./parse-ops.js";
import { Reader } from "./reader.js";
import { parseYaml, type YNode, type YSeq } from "./yaml-source.js";

export interface ConfigResult {
  /** Present when the file had no errors. */
  readonly config?: Config;
  readonly diagnostics: readonly Diagnostic[];
}

export interface FlowResult {
  readonly flow?: Flow;
  /** The keys the file actually set, for flow-file override rules. */
  readonly keys: ReadonlySet<string>;
  readonly diagnostics: readonly Diagnostic[];
}

function start(text: string, file: string): { d: Diagnostics; root: YNode | undefined } {
  const d = new Diagnostics(file, new LineIndex(text));
  const parsed = parseYaml(text, file);
  for (const p of parsed.problems) d.error(p.pos, p.message);
  if (parsed.root === undefined && parsed.problems.length === 0) d.error(-1, text.trim() === "" ? "the file is empty" : "the file holds no YAML document, only comments");
  return { d, root: parsed.root };
}

/** True when the text is a single flow (a flow-file) rather than a host config. */
export function looksLikeFlowFile(text: string, file: string): boolean {
  const { root } = parseYaml(text, file);
  if (root?.kind !== "map") return false;
  const keys = new Set(root.pairs.map((p) => String(p.key.value)));
  return !keys.has("flows") && !keys.has("common") && (keys.has("tasks") || keys.has("triggers") || keys.has("id"));
}

/** Parses a host config: `common` and `flows`. */
export function parseConfig(text: string, file: string): ConfigResult {
  const { d, root } = start(text, file);
  if (root === undefined || d.hasErrors) return { diagnostics: d.list };
  const r = new Reader(d);
  const top = r.map(root, "config", "the config");
  if (top === undefined) return { diagnostics: d.list };
  const common = parseCommon(r, top.field("common")?.node);
  const flows: Flow[] = [];
  const refs: FlowRef[] = [];
  const seen = new Map<string, number>();
  const flowsNode = top.get<YSeq>("flows");
  if (!top.has("flows") && !top.invalid("flows")) d.warn(top.pos, "the config has no flows");
  for (const [i, n] of (flowsNode?.items ?? []).entries()) {
    const res = parseFlowNode(r, n, `flows[${i}]`, "flow", new Set(Object.keys(common.secrets ?? {})));
    if (res === undefined) continue;
    const key = flowKey(res.flow);
    if (seen.has(key)) d.error(res.pos, `flow ${res.flow.id} (ver ${res.flow.ver}) is defined twice; give each version its own ver`);
    else seen.set(key, res.pos);
    flows.push(res.flow);
    refs.push(...res.refs);
  }
  checkFlowRefs(flows, refs, d);
  if (d.hasErrors) return { diagnostics: d.list };
  return { config: deepFreeze({ common, flows }), diagnostics: d.list };
}

/** Parses a flow-file: a single flow, which must have an id or a name. */
export function parseFlowText(text: string, file: string): FlowResult {
  const { d, root } = start(text, file);
  if (root === undefined || d.hasErrors) return { keys: new Set(), diagnostics: d.list };
  const r = new Reader(d);
  const res = parseFlowNode(r, root, "the flow-file", "flowFile");
  const keys = new Set(root.kind === "map" ? root.pairs.map((p) => String(p.key.value)) : []);
  if (res === undefined || d.hasErrors) return { keys, diagnostics: d.list };
  return { flow: deepFreeze(res.flow), keys, diagnostics: d.list };
}

function parseCommon(r: Reader, node: YNode | undefined): Common {
  const m = r.map(node, "common", "common");
  const users: User[] = [];
  const names = new Set<string>();
  const usersNode = m?.get<YSeq>("users");
  for (const [i, u] of (usersNode?.items ?? []).entries()) {
    const um = r.map(u, "user", `users[${i}]`);
    const name = um?.get<string>("name");
    const role = um?.get<Role>("role");
    const hash = um?.get<string>("password-hash");
    if (um === undefined) continue;
    if (hash !== undefined && !hash.startsWith("scrypt$")) r.d.error(um.posOf("password-hash"), `password-hash of user "${name ?? `users[${i}]`}" must be made by "floe hash-password" (it starts with scrypt$); never put a plain password here`);
    if (name === undefined || role === undefined || hash === undefined) continue;
    if (names.has(name)) r.d.error(um.posOf("name"), `user "${name}" is defined twice`);
    names.add(name);
    users.push({ name, role, passwordHash: hash });
  }
  const secrets = parseSecretsConfig(r, m);
  const notify = parseNotifySettings(r, m);
  const ret = m?.field("retention");
  const rm = ret === undefined ? undefined : r.map(ret.node, "retention", "retention");
  const opt = <T>(k: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [k]: v });
  return {
    hosts: m?.get<string[]>("hosts") ?? [],
    baseUrl: normaliseBaseUrl(m?.get<string>("base-url")),
    ...opt("workspaceRoot", m?.get<string>("workspace-root")),
    ...opt("storeRoot", m?.get<string>("store-root")),
    ...opt("gitKey", m?.get<string>("git-key")),
    users,
    retention: { runs: rm?.get<number>("runs") ?? DEFAULT_RETENTION.runs, maxAgeMs: rm?.get<number>("max-age") ?? DEFAULT_RETENTION.maxAgeMs },
    artifacts: parseArtifactSettings(r, m),
    ...opt("secrets", secrets),
    ...opt("notify", notify),
  };
}

/** `common.artifacts`: sizes as people write them, each checked with its place. */
function parseArtifactSettings(r: Reader, m: ReturnType<Reader["map"]>): ArtifactSettings {
  const f = m?.field("artifacts");
  const am = f === undefined ? undefined : r.map(f.node, "artifacts", "artifacts");
  const size = (key: string, dflt: number): number => {
    const text = am?.get<string>(key);
    if (text === undefined || am === undefined) return dflt;
    const n = parseByteSize(text);
    if (n === undefined || n < 1) {
      r.d.error(am.posOf(key), `artifacts.${key}: "${text}" is not a size; write e.g. 500MiB, 2GiB or a number of bytes`);
      return dflt;
    }
    return n;
  };
  const maxSize = size("max-size", DEFAULT_ARTIFACTS.maxSize);
  const maxRunSize = size("max-run-size", DEFAULT_ARTIFACTS.maxRunSize);
  if (am !== undefined && maxRunSize < maxSize && am.has("max-run-size")) r.d.error(am.posOf("max-run-size"), `artifacts.max-run-size (${maxRunSize} bytes) is smaller than max-size (${maxSize} bytes)`);
  return { maxSize, maxRunSize, graceMs: am?.get<number>("grace") ?? DEFAULT_ARTIFACTS.graceMs };
}

/** floe's empty base-url broke peer URLs; ours falls back to /build/api and has no trailing slash. */
function normaliseBaseUrl(v: string | undefined): string {
  const s = (v ?? "").trim().replace(/\/+$/, "");
  if (s === "") return DEFAULT_BASE_URL;
  return s.startsWith("/") ? s : `/${s}`;
}

/** `secretNames`: the secrets common.secrets defines; undefined for a flow-file read alone. */
function parseFlowNode(r: Reader, n: YNode, where: string, spec: "flow" | "flowFile", secretNames?: ReadonlySet<string>): { flow: Flow; pos: number; refs: FlowRef[] } | undefined {
  const m = r.map(n, spec, where);
  if (m === undefined) return undefined;
  const d = r.d;
  const rawId = m.get<string>("id") ?? "";
  const rawName = m.get<string>("name") ?? "";
  const derived = deriveIdName(rawId, rawName);
  if (!derived.ok) d.error(m.has("id") ? m.posOf("id") : m.has("name") ? m.posOf("name") : m.pos, `${where}: ${derived.error}`);
  // A bad id is reported once; the rest of the flow is still checked, under the id as written.
  const ids = derived.ok ? derived : { id: rawId || rawName || where, name: rawName || rawId || where };
  const places = new Map<FlowNode, NodePlaces>();
  const nodes = (key: "triggers" | "tasks"): FlowNode[] => {
    const out: FlowNode[] = [];
    for (const [i, item] of (m.get<YSeq>(key)?.items ?? []).entries()) {
      const p = parseNode(r, item, key, i, ids.id);
      if (p === undefined) continue;
      places.set(p.node, p.places);
      out.push(p.node);
    }
    return out;
  };
  const triggers = nodes("triggers") as TriggerNode[];
  const tasks = nodes("tasks") as (TaskNode | MergeNode)[];
  const env = m.get<string[]>("env") ?? [];
  const envField = m.field("env");
  env.forEach((e, i) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(e)) {
      const item = envField?.node.kind === "seq" ? envField.node.items[i] : undefined;
      d.error(item?.pos ?? m.posOf("env"), `env entry "${e}" of flow ${ids.id} must look like KEY=value`);
    }
  });
  const opt = <T>(k: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [k]: v });
  const flow: Flow = {
    id: ids.id,
    ver: m.get<number>("ver") ?? 1,
    name: ids.name,
    ...opt("flowFile", m.get<string>("flow-file")),
    reuseSpace: m.get<boolean>("reuse-space") ?? false,
    hostTags: m.get<string[]>("host-tags") ?? [],
    resourceTags: m.get<string[]>("resource-tags") ?? [],
    env,
    triggers,
    tasks,
    ...opt("concurrency", m.get<number>("concurrency")),
    ...opt("queueLimit", m.get<number>("queue-limit")),
    queueStrategy: m.get<QueueStrategy>("queue-strategy") ?? "append",
    onHostLoss: m.get<OnHostLoss>("on-host-loss") ?? "requeue",
    ...opt("timeoutMs", m.get<number>("timeout")),
    ...parseFlowOps(r, m, ids.id, secretNames),
    ...opt("debounceMs", m.get<number>("debounce")),
    ...opt("onUpdate", m.get<OnUpdate>("on-update")),
  };
  for (const key of ["host-tags", "resource-tags"] as const) {
    const list = m.field(key)?.node;
    for (const item of list?.kind === "seq" ? list.items : []) {
      const t = item.kind === "scalar" && item.value !== null ? String(item.value) : undefined; // other entries: already reported
      if (t !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(t)) d.error(item.pos, `${key} entry "${t}" of flow ${ids.id} may only contain letters, digits, "_", "-" and "."`);
    }
  }
  if (flow.queueStrategy === "debounce" && !m.has("debounce")) d.error(m.keyPosOf("queue-strategy"), `queue-strategy: debounce of flow ${ids.id} needs debounce (how long a trigger waits for a newer one, e.g. 5s)`);
  if (m.has("debounce") && flow.queueStrategy !== "debounce") d.warn(m.keyPosOf("debounce"), `debounce of flow ${ids.id} has no effect without queue-strategy: debounce`);
  if (m.has("queue-strategy") && flow.queueStrategy !== "debounce" && !m.has("queue-limit")) d.warn(m.keyPosOf("queue-strategy"), `queue-strategy of flow ${ids.id} has no effect without queue-limit`);
  checkFlow(flow, places, m.pos, d, spec === "flowFile");
  const refs: FlowRef[] = [];
  for (const [node, p] of places) if (node.class === "task" && p.flowAt !== undefined) refs.push({ from: flow, node, pos: p.flowAt });
  return { flow, pos: m.has("id") ? m.posOf("id") : m.has("name") ? m.posOf("name") : m.pos, refs };
}
