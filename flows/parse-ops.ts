/**
 * The operators' keys of a flow file: `common.secrets` (where each host reads a secret),
 * `common.notify` (how failed notifications are retried), and a flow's `secrets` and
 * `notify`, checked against the secrets the config defines.
 */
import { didYouMean } from "./diagnostics.js";
import { DEFAULT_NOTIFY, NOTIFY_RESULTS, type NotifyFormat, type NotifyResult, type NotifySettings, type NotifyTarget, type SecretSource } from "./model.js";
import type { ReadMap, Reader } from "./reader.js";
import type { YNode, YSeq } from "./yaml-source.js";

/** A secret's name is an environment variable's name: it is one in the task's environment. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `common.secrets`: `NAME: {file: PATH}` or `NAME: {env: VAR}`. */
export function parseSecretsConfig(r: Reader, common: ReadMap | undefined): Record<string, SecretSource> | undefined {
  const field = common?.field("secrets");
  if (field === undefined || field.node.kind !== "map") return undefined;
  const out: Record<string, SecretSource> = {};
  for (const { key, value } of field.node.pairs) {
    const name = String(key.value);
    if (!SECRET_NAME.test(name)) {
      r.d.error(key.pos, `secret name "${name}" must look like an environment variable name (letters, digits and _, not starting with a digit)`);
      continue;
    }
    const m = r.map(value, "secret", `secret ${name}`);
    if (m === undefined) continue;
    const file = m.get<string>("file");
    const env = m.get<string>("env");
    if ((file === undefined) === (env === undefined)) {
      r.d.error(m.pos, `secret ${name} needs exactly one of file: PATH or env: VAR`);
      continue;
    }
    if (env !== undefined && !SECRET_NAME.test(env)) {
      r.d.error(m.posOf("env"), `env of secret ${name} must be an environment variable name, not "${env}"`);
      continue;
    }
    out[name] = file !== undefined ? { file } : { env: env ?? "" };
  }
  return out;
}

/** `common.notify`: retry settings. */
export function parseNotifySettings(r: Reader, common: ReadMap | undefined): NotifySettings | undefined {
  const field = common?.field("notify");
  if (field === undefined) return undefined;
  const m = r.map(field.node, "notifySettings", "common.notify");
  return {
    retryForMs: m?.get<number>("retry-for") ?? DEFAULT_NOTIFY.retryForMs,
    backoffMs: m?.get<number>("backoff") ?? DEFAULT_NOTIFY.backoffMs,
    maxBackoffMs: m?.get<number>("max-backoff") ?? DEFAULT_NOTIFY.maxBackoffMs,
    ...(m?.get<string>("page-url") !== undefined ? { pageUrl: (m.get<string>("page-url") ?? "").replace(/\/+$/, "") } : {}),
  };
}

/**
 * A flow's `secrets` and `notify`. `defined`: the names of common.secrets, or undefined for
 * a flow-file read on its own (its config, and so its secrets, are not known then).
 */
export function parseFlowOps(r: Reader, m: ReadMap, flowId: string, defined: ReadonlySet<string> | undefined): { secrets?: readonly string[]; notify?: readonly NotifyTarget[] } {
  const d = r.d;
  if (defined === undefined) {
    // A flow-file may come from a repository: which flow gets which secret, and who hears of
    // its runs, is the host config's to say.
    for (const key of ["secrets", "notify"]) if (m.has(key)) d.warn(m.keyPosOf(key), `${key} in a flow-file is ignored: give it to flow ${flowId} in the host's config`);
    return {};
  }
  const known = (name: string, pos: number, what: string): void => {
    if (!SECRET_NAME.test(name)) d.error(pos, `${what} "${name}" of flow ${flowId} is not a secret name (letters, digits and _)`);
    else if (!defined.has(name)) d.error(pos, `${what} "${name}" of flow ${flowId} is not defined in common.secrets${didYouMean(name, [...defined])}`);
  };
  const secrets = m.get<string[]>("secrets");
  const secretsNode = m.field("secrets")?.node;
  secrets?.forEach((name, i) => known(name, (secretsNode?.kind === "seq" ? secretsNode.items[i]?.pos : undefined) ?? m.posOf("secrets"), "secret"));
  const notify: NotifyTarget[] = [];
  for (const [i, item] of (m.get<YSeq>("notify")?.items ?? []).entries()) {
    const n = r.map(item, "notify", `notify[${i}] of flow ${flowId}`);
    const url = n?.get<string>("url");
    if (n === undefined || url === undefined) continue;
    if (!/^https?:\/\/[^\s/]+/i.test(url)) d.error(n.posOf("url"), `notify[${i}].url of flow ${flowId} must be an http:// or https:// URL`);
    const secret = n.get<string>("secret");
    if (secret !== undefined) known(secret, n.posOf("secret"), `notify[${i}].secret`);
    const on = n.get<string[]>("on") ?? [...NOTIFY_RESULTS];
    const onNode: YNode | undefined = n.field("on")?.node;
    on.forEach((res, j) => {
      if (!(NOTIFY_RESULTS as readonly string[]).includes(res)) d.error((onNode?.kind === "seq" ? onNode.items[j]?.pos : undefined) ?? n.posOf("on"), `notify[${i}].on of flow ${flowId}: "${res}" is not a result (${NOTIFY_RESULTS.join(", ")})${didYouMean(res, NOTIFY_RESULTS)}`);
    });
    notify.push({ url, ...(secret !== undefined ? { secret } : {}), on: on.filter((x): x is NotifyResult => (NOTIFY_RESULTS as readonly string[]).includes(x)), format: n.get<NotifyFormat>("format") ?? "json" });
  }
  return { ...(secrets !== undefined && secrets.length > 0 ? { secrets } : {}), ...(notify.length > 0 ? { notify } : {}) };
}
