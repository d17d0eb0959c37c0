/**
 * One node of a flow (a trigger, a task or a merge): its class, type, id, and the
 * options each type needs, checked where they can be checked before a run.
 */
import { Cron } from "croner";
import { didYouMean } from "./diagnostics.js";
import { parseDuration } from "./duration.js";
import { readForm } from "./forms.js";
import { checkOptions, TASK_OPTIONS, triggerOptions } from "./node-options.js";
import { deriveIdName } from "./ids.js";
import { MERGE_TYPES, TASK_TYPES, TRIGGER_TYPES, type FlowNode, type MergeType, type NodeClass, type TaskType, type TriggerType } from "./model.js";
import type { Reader, ReadMap } from "./reader.js";
import type { YMap, YNode } from "./yaml-source.js";
import { errorMessage } from "./errors.js";

/** Where each part of a node was written, for later checks that point at it. */
export interface NodePlaces {
  readonly node: number;
  readonly id: number;
  readonly listen: number;
  readonly wait: readonly number[];
  /** The node's type or listen was missing or wrong (already reported); flow checks spare it. */
  readonly broken: boolean;
}

export interface ParsedNode {
  readonly node: FlowNode;
  readonly places: NodePlaces;
}

export const HASH_ALGOS = ["sha256", "sha1", "md5"];

export function parseNode(r: Reader, n: YNode, list: "triggers" | "tasks", index: number, flowId: string): ParsedNode | undefined {
  const where = `${list}[${index}] of flow ${flowId}`;
  const m = r.map(n, "node", where);
  if (m === undefined) return undefined;
  const d = r.d;
  const rawId = m.get<string>("id") ?? "";
  const rawName = m.get<string>("name") ?? "";
  const derived = deriveIdName(rawId, rawName);
  if (!derived.ok) d.error(m.has("id") ? m.posOf("id") : m.has("name") ? m.posOf("name") : m.pos, `${where}: ${derived.error}`);
  // A bad id is reported once; the rest of the node is still checked, under the id as written.
  const ids = derived.ok ? derived : { id: rawId || rawName || `${list}[${index}]`, name: rawName || rawId || `${list}[${index}]` };
  const label = `${list === "triggers" ? "trigger" : "node"} "${ids.id}"`;
  // The class as written, or the list's default. A missing, unknown or misplaced class is
  // reported once, and the node is then checked as what it looks like (a node under tasks
  // with "wait" as a merge), so that one mistake does not give three messages.
  let cls: NodeClass = m.get<NodeClass>("class") ?? (list === "triggers" ? "trigger" : m.invalid("class") && m.has("wait") ? "merge" : "task");
  const classWritten = m.has("class") || m.invalid("class");
  if (list === "tasks" && !classWritten && m.has("wait") && !m.has("listen") && !TASK_TYPES.includes(m.get<string>("type") as TaskType)) {
    d.error(m.pos, `${label} has "wait" and no "listen", as a merge does, but no class; add "class: merge"`);
    cls = "merge";
  }
  if (list === "triggers" && cls !== "trigger") {
    d.error(m.posOf("class"), `${label} is under triggers but has class ${cls}`);
    cls = "trigger";
  }
  if (list === "tasks" && cls === "trigger") {
    d.error(m.posOf("class"), `${label} has class trigger but is under tasks; put it under triggers`);
    cls = m.has("wait") ? "merge" : "task";
  }
  const opts = Object.freeze({ ...(m.get<Record<string, unknown>>("opts") ?? {}) });
  const rawType = m.get<string>("type");
  const typePos = m.posOf("type");
  const base = { id: ids.id, name: ids.name, opts };
  // Set when the node's type or listen is missing or wrong (already reported): it stays in
  // the flow so that whole-flow checks do not pile more messages on the same mistake.
  let broken = false;
  const placesOf = (): NodePlaces => ({
    node: m.pos,
    id: m.has("id") ? m.posOf("id") : m.posOf("name"),
    listen: m.posOf("listen"),
    wait: waitPlaces(m),
    broken,
  });

  if (cls === "trigger") {
    let type: TriggerType = "data";
    if (rawType === undefined) {
      if (!m.invalid("type")) d.error(m.pos, `${label} needs a type (${TRIGGER_TYPES.join(", ")})`);
      broken = true;
    } else if (!TRIGGER_TYPES.includes(rawType as TriggerType)) {
      d.error(typePos, `${label} has unknown trigger type "${rawType}"${didYouMean(rawType, TRIGGER_TYPES)}`);
      broken = true;
    } else type = rawType as TriggerType;
    for (const k of ["listen", "wait", "good", "ignore-fail", "use-status", "timeout", "retries", "for-each", "parallel"]) {
      if (m.has(k)) d.warn(m.keyPosOf(k), `"${k}" has no meaning on ${label}; it is ignored`);
    }
    if (!broken && !m.invalid("opts")) checkTriggerOpts(r, m, label, type, opts);
    return { node: { ...base, class: "trigger", type }, places: placesOf() };
  }

  if (cls === "merge") {
    if (m.has("listen")) d.error(m.keyPosOf("listen"), `merge ${label} can not have "listen"; a merge waits with "wait"`);
    const type = (rawType ?? "all") as MergeType;
    if (!MERGE_TYPES.includes(type)) d.error(typePos, `merge ${label} has unknown type "${rawType}"; use all or any${didYouMean(String(rawType), MERGE_TYPES)}`);
    const wait = m.get<string[]>("wait") ?? [];
    if (wait.length === 0 && !m.invalid("wait")) d.error(m.has("wait") ? m.posOf("wait") : m.pos, `merge ${label} needs "wait": the event tags it waits for`);
    const places = placesOf();
    const seen = new Set<string>();
    wait.forEach((tag, i) => {
      if (seen.has(tag)) d.error(places.wait[i] ?? m.posOf("wait"), `merge ${label} waits twice for "${tag}"; it would never fire`);
      seen.add(tag);
    });
    for (const k of ["good", "ignore-fail", "use-status", "timeout", "retries", "for-each", "parallel"]) {
      if (m.has(k)) d.warn(m.keyPosOf(k), `"${k}" has no meaning on merge ${label}; it is ignored`);
    }
    return { node: { ...base, class: "merge", type: MERGE_TYPES.includes(type) ? type : "all", wait }, places };
  }

  // a task
  if (m.has("wait")) d.error(m.keyPosOf("wait"), `task ${label} can not have "wait"; only merges (class: merge) wait`);
  let type: TaskType = "exec";
  if (rawType === undefined) {
    if (!m.invalid("type")) d.error(m.pos, `task ${label} needs a type (${TASK_TYPES.join(", ")})`);
    broken = true;
  } else if (MERGE_TYPES.includes(rawType as MergeType)) {
    d.error(typePos, `task ${label} has type ${rawType}, which is a merge type; a merge needs "class: merge"`);
    broken = true;
  } else if (!TASK_TYPES.includes(rawType as TaskType)) {
    d.error(typePos, `task ${label} has unknown type "${rawType}"${didYouMean(rawType, TASK_TYPES)}`);
    broken = true;
  } else type = rawType as TaskType;
  const listen = (m.get<string>("listen") ?? "").trim();
  if (listen === "") {
    if (!m.invalid("listen")) d.error(m.has("listen") ? m.posOf("listen") : m.pos, `task ${label} needs "listen": the event tag that starts it (e.g. trigger.good)`);
    broken = true;
  }
  if (!broken && !m.invalid("opts")) checkTaskOpts(r, m, label, type, opts);
  const retries = m.field("retries");
  const rm = retries === undefined ? undefined : r.map(retries.node, "retries", `retries of ${label}`);
  const timeoutMs = m.get<number>("timeout");
  const max = rm?.get<number>("max");
  const forEach = m.get<"artifacts" | string[]>("for-each");
  const parallel = m.get<number>("parallel");
  if (parallel !== undefined && forEach === undefined && !m.invalid("for-each")) d.warn(m.keyPosOf("parallel"), `"parallel" of task ${label} has no meaning without "for-each"; it is ignored`);
  if (forEach !== undefined && (type === "data" || type === "end")) d.error(m.keyPosOf("for-each"), `a ${type} task (${label}) can not have "for-each"; only tasks that run something fan out`);
  return {
    node: {
      ...base,
      class: "task",
      type,
      listen,
      good: Object.freeze(m.get<number[]>("good") ?? [0]),
      ignoreFail: m.get<boolean>("ignore-fail") ?? false,
      useStatus: m.get<boolean>("use-status") ?? false,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(rm !== undefined && max !== undefined ? { retries: { max, backoffMs: rm.get<number>("backoff") ?? 1000 } } : {}),
      ...(forEach !== undefined && type !== "data" && type !== "end" ? { forEach: Object.freeze(forEach === "artifacts" ? forEach : [...forEach]) } : {}),
      ...(forEach !== undefined && parallel !== undefined ? { parallel } : {}),
    },
    places: placesOf(),
  };
}

function waitPlaces(m: ReadMap): number[] {
  const f = m.field("wait");
  if (f === undefined || f.node.kind !== "seq") return [];
  // The entries the reader kept (text values), so that wait[i] and its place stay in step.
  return f.node.items.filter((i) => i.kind === "scalar" && i.value !== null).map((i) => i.pos);
}

/** The offset of `opts.<key>` (or opts, or the node), for messages about an option. */
function optPos(m: ReadMap, key: string): number {
  const f = m.field("opts");
  if (f === undefined) return m.pos;
  const map = f.node as YMap;
  const p = map.pairs.find((x) => String(x.key.value).toLowerCase() === key.toLowerCase());
  return p === undefined ? f.pos : p.value.pos;
}

/** The offset of `opts.form.<path>` (e.g. "fields[1].id"), or of the deepest part of it that was written. */
function formPos(m: ReadMap, path: string): number {
  const f = m.field("opts");
  if (f === undefined) return m.pos;
  let at: YNode = f.node;
  for (const step of ["form", ...path.split(/\.|(?=\[)/).filter((x) => x !== "")]) {
    const index = /^\[(\d+)\]$/.exec(step)?.[1];
    const next: YNode | undefined =
      index !== undefined ? (at.kind === "seq" ? at.items[Number(index)] : undefined) : at.kind === "map" ? at.pairs.find((p) => String(p.key.value).toLowerCase() === step.toLowerCase())?.value : undefined;
    if (next === undefined) break;
    at = next;
  }
  return at.pos;
}

function checkForm(r: Reader, m: ReadMap, label: string, opts: Record<string, unknown>, required: boolean): void {
  const { form, problems } = readForm(opts);
  for (const p of problems) {
    const msg = `${label}: ${p.message}`;
    if (p.severity === "error") r.d.error(formPos(m, p.path), msg);
    else r.d.warn(formPos(m, p.path), msg);
  }
  if (required && form === undefined && problems.length === 0) r.d.error(m.has("opts") ? m.posOf("opts") : m.pos, `data task ${label} needs opts.form with its fields`);
}

function checkTriggerOpts(r: Reader, m: ReadMap, label: string, type: TriggerType, opts: Record<string, unknown>): void {
  const d = r.d;
  const optsNode = m.field("opts")?.node;
  if (optsNode?.kind === "map") checkOptions(d, optsNode, triggerOptions(type), label, type);
  switch (type) {
    case "data":
      checkForm(r, m, label, opts, false);
      return;
    case "timer": {
      const p = opts["period"];
      if (p === undefined) d.warn(m.has("opts") ? m.posOf("opts") : m.pos, `timer ${label} has no opts.period; it fires every 10 seconds, as floe did`);
      else if (typeof p !== "number" || !Number.isInteger(p) || p < 1) d.error(optPos(m, "period"), `opts.period of timer ${label} must be a whole number of seconds, at least 1`);
      return;
    }
    case "cron": {
      const c = opts["cron"];
      if (typeof c !== "string" || c.trim() === "") {
        d.error(m.has("opts") ? optPos(m, "cron") : m.pos, `cron ${label} needs opts.cron, e.g. "*/5 * * * *"`);
        return;
      }
      const tz = opts["tz"];
      try {
        new Cron(c, { paused: true, ...(typeof tz === "string" ? { timezone: tz } : {}) }).stop();
      } catch (e) {
        d.error(optPos(m, "cron"), `opts.cron of ${label} is not a valid cron expression: ${errorMessage(e).replace(/^CronPattern: /, "")}`);
      }
      if (tz !== undefined && (typeof tz !== "string" || !validTimeZone(tz))) d.error(optPos(m, "tz"), `opts.tz of ${label} is not a known time zone: ${String(tz)}`);
      return;
    }
    case "poll-git": {
      if (typeof opts["url"] !== "string" || opts["url"] === "") d.error(m.has("opts") ? optPos(m, "url") : m.pos, `poll-git ${label} needs opts.url, the repository to poll`);
      const p = opts["period"];
      if (p !== undefined && (typeof p !== "number" || !Number.isInteger(p) || p < 1)) d.error(optPos(m, "period"), `opts.period of ${label} must be a whole number of seconds, at least 1`);
      for (const k of ["exclude", "exclude-refs"]) {
        const v = opts[k];
        if (typeof v === "string") {
          try {
            new RegExp(v);
          } catch {
            d.error(optPos(m, k), `opts.${k} of ${label} is not a valid regular expression`);
          }
        }
      }
      return;
    }
    case "git-push":
    case "webhook": {
      const s = opts["secret"];
      if (s !== undefined && typeof s !== "string") d.error(optPos(m, "secret"), `opts.secret of ${label} must be text`);
      const refs = opts["refs"];
      if (refs !== undefined && typeof refs !== "string" && !(Array.isArray(refs) && refs.every((x) => typeof x === "string"))) {
        d.error(optPos(m, "refs"), `opts.refs of ${label} must be a ref pattern or a list of them`);
      }
      return;
    }
  }
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function checkTaskOpts(r: Reader, m: ReadMap, label: string, type: TaskType, opts: Record<string, unknown>): void {
  const d = r.d;
  // The options' names and shapes: node-options.ts.
  const optsNode = m.field("opts")?.node;
  if (optsNode?.kind === "map") checkOptions(d, optsNode, TASK_OPTIONS[type], `task ${label}`, type);
  switch (type) {
    case "exec": {
      if (opts["cmd"] === undefined && opts["shell"] === undefined) d.warn(m.has("opts") ? m.posOf("opts") : m.pos, `exec task ${label} has neither opts.cmd nor opts.shell; it will fail unless its event brings one`);
      return;
    }
    case "fetch": {
      const algo = opts["checksum-algo"];
      if (algo !== undefined && !HASH_ALGOS.includes(String(algo))) {
        d.error(optPos(m, "checksum-algo"), `opts.checksum-algo of ${label} must be one of ${HASH_ALGOS.join(", ")}, not "${String(algo)}"`);
      }
      const sum = opts["checksum"];
      if (sum !== undefined && (typeof sum !== "string" || !/^[0-9a-fA-F]+$/.test(sum.trim().split(/\s+/)[0] ?? ""))) {
        d.error(optPos(m, "checksum"), `opts.checksum of ${label} must be a hex digest (optionally followed by a file name)`);
      }
      const url = opts["url"];
      if (url !== undefined && (typeof url !== "string" || !/^https?:\/\//.test(url))) d.error(optPos(m, "url"), `opts.url of ${label} must be an http(s) URL`);
      return;
    }
    case "timer": {
      const dur = opts["duration"] ?? opts["period"];
      if (dur === undefined) d.warn(m.has("opts") ? m.posOf("opts") : m.pos, `timer task ${label} has no opts.duration; it ends at once`);
      else if (parseDuration(dur) === undefined) d.error(optPos(m, opts["duration"] !== undefined ? "duration" : "period"), `opts.duration of ${label} must be a duration such as 30s or 5m`);
      return;
    }
    case "data":
      checkForm(r, m, label, opts, true);
      return;
    case "git-checkout":
    case "git-merge":
    case "end":
      return;
  }
}
