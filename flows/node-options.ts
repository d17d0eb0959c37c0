/**
 * The options (`opts`) each node type reads, as the agent (agent/*.ts), the triggers
 * (hub/triggers/*.ts) and data forms read them, and the original floe's names (reference
 * §2). Validation warns about an option no one reads (a typo: `shel`, `timout`, `ur`, `from`)
 * with a "did you mean", as for top-level keys, and reports a value of the wrong shape as an
 * error. Semantic checks (durations, cron, checksums…) stay in parse-node.ts.
 */
import { closest, type Diagnostics } from "./diagnostics.js";
import type { TaskType, TriggerType } from "./model.js";
import { SPECS } from "./spec.js";
import { describe, type YMap, type YNode } from "./yaml-source.js";

/**
 * `string`: text only; `text`: text or a number (`branch: 2024` means "2024"); `texts`: a
 * list of text; `scalars`: a list of plain values; `text-or-texts`: either; `checked`: its
 * own check in parse-node.ts; `any`: anything (passed on).
 */
type OptionKind = "string" | "text" | "texts" | "scalars" | "text-or-texts" | "checked" | "any";

const ENV = { env: "texts" } as const;
const GIT = { url: "text", branch: "text", "sub-dir": "text", "key-file": "text", ...ENV } as const;

export const TASK_OPTIONS: Readonly<Record<TaskType, Readonly<Record<string, OptionKind>>>> = {
  exec: { cmd: "string", shell: "string", args: "scalars", "sub-dir": "string", ...ENV },
  // floe's git-checkout ignored hash and from-branch; ours checks out hash when given.
  "git-checkout": { ...GIT, hash: "text", "from-branch": "text" },
  "git-merge": { ...GIT, "from-branch": "text" },
  fetch: { url: "checked", checksum: "checked", "checksum-algo": "checked", location: "text", ...ENV },
  timer: { duration: "checked", period: "checked", ...ENV },
  data: { form: "checked", ...ENV },
  end: {},
  // A child run (hub/child-runs.ts): every option but flow is optional; values, pass and artifacts are checked in parse-node.ts.
  flow: { flow: "string", ver: "checked", trigger: "string", values: "checked", pass: "texts", artifacts: "texts" },
};

const TRIGGER_OWN: Readonly<Record<TriggerType, Readonly<Record<string, OptionKind>>>> = {
  data: { form: "checked" },
  timer: { period: "checked" },
  cron: { cron: "checked", tz: "checked" },
  "poll-git": { url: "checked", period: "checked", refs: "text-or-texts", exclude: "text-or-texts", "exclude-refs": "text-or-texts" },
  "git-push": { url: "text", refs: "checked", secret: "checked" },
  webhook: { url: "text", refs: "checked", secret: "checked" },
};

/**
 * A trigger's other options go to the run: tasks listening to trigger.good get them (a
 * timer's `url` and `branch` feed a git-checkout, reference §1.6), so every task option is
 * known on a trigger too; their values are checked where a task reads them.
 */
const PASSED_ON: Readonly<Record<string, OptionKind>> = Object.fromEntries(
  // Not a flow task's: it reads its own opts only (what it starts is checked before a run).
  Object.entries(TASK_OPTIONS).flatMap(([type, o]) => (type === "flow" ? [] : Object.keys(o).map((k) => [k, "any" as const]))),
);

export function triggerOptions(type: TriggerType): Readonly<Record<string, OptionKind>> {
  return { ...PASSED_ON, ...TRIGGER_OWN[type] };
}

/** Keys read case-insensitively (forms, as floe decoded them). */
const ANY_CASE = new Set(["form"]);

/** Checks the keys of `opts` (already known to be a map) against a node type's options. */
/** `unknownIsError`: a node type with no floe past to stay compatible with (flow) refuses unknown options instead of ignoring them. */
export function checkOptions(d: Diagnostics, opts: YMap, known: Readonly<Record<string, OptionKind>>, label: string, type: string, unknownIsError = false): void {
  for (const { key, value } of opts.pairs) {
    const name = String(key.value);
    const kind = known[name] ?? (ANY_CASE.has(name.toLowerCase()) ? "checked" : undefined);
    if (kind === undefined) {
      // `timeout: 5s` (or `timout`) inside opts: a key of the node, written one level too deep.
      const option = closest(name, Object.keys(known));
      const nodeKey = name in SPECS.node ? name : closest(name, Object.keys(SPECS.node));
      const hint = option !== undefined ? ` (did you mean "${option}"?)` : nodeKey === undefined ? "" : nodeKey === name ? ` ("${name}" is a key of the node itself: put it beside opts, not in it)` : ` (did you mean "${nodeKey}"? it is a key of the node itself: put it beside opts, not in it)`;
      if (unknownIsError) d.error(key.pos, `unknown option "${name}" in opts of ${label} (${type})${hint}; ${type} tasks know ${Object.keys(known).join(", ")}`);
      else d.warn(key.pos, `unknown option "${name}" in opts of ${label} (${type})${hint}; it is ignored`);
      continue;
    }
    if (value.kind === "scalar" && value.value === null) continue; // `key:` with no value = absent
    const want = wrongShape(value, kind);
    if (want !== undefined) d.error(value.pos, `opts.${name} of ${label} must be ${want}, not ${describe(value)}`);
  }
}

/** What the value should have been, or undefined when it has the right shape. */
function wrongShape(n: YNode, kind: OptionKind): string | undefined {
  const isText = (x: YNode): boolean => x.kind === "scalar" && typeof x.value === "string";
  const isTextish = (x: YNode): boolean => x.kind === "scalar" && (typeof x.value === "string" || typeof x.value === "number");
  switch (kind) {
    case "string":
      return isText(n) ? undefined : "text";
    case "text":
      return isTextish(n) ? undefined : "text";
    case "texts":
      return n.kind === "seq" && n.items.every(isText) ? undefined : "a list of text values";
    case "scalars":
      return n.kind === "seq" && n.items.every((x) => x.kind === "scalar" && x.value !== null) ? undefined : "a list of text values";
    case "text-or-texts":
      return isText(n) || (n.kind === "seq" && n.items.every(isText)) ? undefined : "a text value or a list of them";
    case "checked":
    case "any":
      return undefined;
  }
}
