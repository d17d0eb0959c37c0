/**
 * The chaos workload: the flows (resource locks, host tags, merges, a data node, retries,
 * timeouts, `on-host-loss: requeue` and `fail`) and the seeded plan of runs to trigger.
 * Every task appends evidence lines to a file outside floe's store, so the invariants are
 * checked against what the tasks themselves saw, not against floe's own records:
 *   `<kind> <run> <flow> <node> <host> <attempt> <pid> <ns>`
 * with kind `start`, `end` (finished), `fail` (exited 1 on purpose) or `term` (SIGTERM).
 */
import { join } from "node:path";
import type { HostSpec } from "../helpers/cluster.js";
import type { Rng } from "./prng.js";

export interface FlowSpec {
  readonly id: string;
  readonly resources: readonly string[];
  readonly hostTags: readonly string[];
  readonly onHostLoss: "requeue" | "fail";
  /** Nodes that need an answer from the suite (data nodes). */
  readonly dataNodes: readonly string[];
  /** Picks the trigger values of one run. */
  values(rng: Rng): Record<string, string>;
}

/** h1 has no special tag; only h2 and h3 are gpu hosts, only h3 a db host. */
export const HOSTS: readonly HostSpec[] = [
  { name: "h1", tags: ["linux"], slots: 4 },
  { name: "h2", tags: ["linux", "gpu"], slots: 4 },
  { name: "h3", tags: ["linux", "gpu", "db"], slots: 4 },
];

/** The host whose --root sits on a small tmpfs, for the full-disk fault. */
export const DISK_HOST = "h1";

const dur = (rng: Rng, lo: number, hi: number) => rng.between(lo, hi).toFixed(2);

export const FLOWS: readonly FlowSpec[] = [
  { id: "lock-a", resources: ["res-a"], hostTags: [], onHostLoss: "requeue", dataNodes: [], values: (r) => ({ dur: dur(r, 0.1, 0.5) }) },
  { id: "lock-ab", resources: ["res-a", "res-b"], hostTags: [], onHostLoss: "requeue", dataNodes: [], values: (r) => ({ dur: dur(r, 0.1, 0.4), fails: String(r.int(0, 1)) }) },
  { id: "lock-b-gpu", resources: ["res-b"], hostTags: ["gpu"], onHostLoss: "requeue", dataNodes: [], values: (r) => ({ dur: dur(r, 0.1, 0.5) }) },
  { id: "db-job", resources: [], hostTags: ["db"], onHostLoss: "requeue", dataNodes: [], values: (r) => ({ dur: dur(r, 0.1, 0.8) }) },
  { id: "fan", resources: [], hostTags: [], onHostLoss: "requeue", dataNodes: [], values: (r) => ({ dur: dur(r, 0.1, 0.8) }) },
  { id: "ask", resources: [], hostTags: [], onHostLoss: "requeue", dataNodes: ["approve"], values: (r) => ({ dur: dur(r, 0.05, 0.3) }) },
  { id: "flaky", resources: [], hostTags: [], onHostLoss: "requeue", dataNodes: [], values: (r) => ({ dur: dur(r, 0.05, 0.3), fails: String(r.int(0, 3)) }) },
  { id: "slow", resources: [], hostTags: [], onHostLoss: "requeue", dataNodes: [], values: (r) => ({ dur: r.chance(0.3) ? "4" : dur(r, 0.1, 0.5) }) },
  { id: "fragile", resources: [], hostTags: [], onHostLoss: "fail", dataNodes: [], values: (r) => ({ dur: dur(r, 0.3, 2) }) },
  { id: "fragile-lock", resources: ["res-c"], hostTags: ["gpu"], onHostLoss: "fail", dataNodes: [], values: (r) => ({ dur: dur(r, 0.2, 1) }) },
];

export function flowSpec(id: string): FlowSpec | undefined {
  return FLOWS.find((f) => f.id === id);
}

/**
 * The body of every task: evidence at start and end, `term` when floe's SIGTERM reaches it
 * (the sleep runs in the background so the trap fires at once), and an optional number of
 * planned failures counted per run in a file (so retries and requeues see the count).
 */
function task(evidence: string, counters: string, o: { sleep: string; failing?: boolean }): string {
  // $EPOCHREALTIME (bash 5, microseconds) needs no fork: a `date` child could be killed by
  // the group's SIGTERM half-way and leave an empty time.
  const ev = `ev() { local t=\${EPOCHREALTIME/./}; echo "$1 $FLOE_RUN_ID $FLOE_FLOW $FLOE_NODE $FLOE_HOST $FLOE_ATTEMPT $$ \${t}000" >> ${evidence}; }`;
  const fail = o.failing
    ? `C=${counters}/$FLOE_RUN_ID-$FLOE_NODE; n=$(cat $C 2>/dev/null || echo 0); echo $((n+1)) > $C; if [ "$n" -lt "\${FAILS:-0}" ]; then ev fail; exit 1; fi; `
    : "";
  const script = `${ev}; trap 'ev term; exit 143' TERM; ev start; ${fail}sleep ${o.sleep} & wait $!; ev end`;
  // JSON strings are YAML double-quoted strings.
  return JSON.stringify(script);
}

/** The flows file for a chaos run whose evidence goes to `dir`. */
export function chaosConf(dir: string): string {
  const evidence = join(dir, "evidence.log");
  const counters = join(dir, "counters");
  const t = (o: { sleep: string; failing?: boolean }) => task(evidence, counters, o);
  const work = t({ sleep: "$DUR" });
  const quick = t({ sleep: "0.05" });
  const head = (f: FlowSpec) =>
    `  - id: ${f.id}\n` +
    (f.resources.length > 0 ? `    resource-tags: [${f.resources.join(", ")}]\n` : "") +
    (f.hostTags.length > 0 ? `    host-tags: [${f.hostTags.join(", ")}]\n` : "") +
    `    on-host-loss: ${f.onHostLoss}\n` +
    `    triggers: [{name: go, type: data}]\n    tasks:\n`;
  const spec = (id: string): FlowSpec => {
    const f = flowSpec(id);
    if (f === undefined) throw new Error(`no flow ${id}`);
    return f;
  };
  return `flows:
${head(spec("lock-a"))}      - {name: work, type: exec, listen: trigger.good, opts: {shell: ${work}}}
      - {name: after, type: exec, listen: task.work.good, opts: {shell: ${quick}}}
      - {name: done, type: end, listen: task.after.good}
${head(spec("lock-ab"))}      - {name: work, type: exec, listen: trigger.good, retries: {max: 1, backoff: 100ms}, opts: {shell: ${t({ sleep: "$DUR", failing: true })}}}
${head(spec("lock-b-gpu"))}      - {name: work, type: exec, listen: trigger.good, opts: {shell: ${work}}}
${head(spec("db-job"))}      - {name: work, type: exec, listen: trigger.good, opts: {shell: ${work}}}
${head(spec("fan"))}      - {name: left, type: exec, listen: trigger.good, opts: {shell: ${work}}}
      - {name: right, type: exec, listen: trigger.good, opts: {shell: ${quick}}}
      - {name: both, class: merge, type: all, wait: [task.left.good, task.right.good]}
      - {name: join, type: exec, listen: merge.both.good, opts: {shell: ${quick}}}
${head(spec("ask"))}      - {name: prep, type: exec, listen: trigger.good, opts: {shell: ${work}}}
      - {name: approve, type: data, listen: task.prep.good, opts: {form: {title: Go on?, fields: [{id: note, prompt: Note, type: string}]}}}
      - {name: act, type: exec, listen: task.approve.good, opts: {shell: ${quick}}}
${head(spec("flaky"))}      - {name: work, type: exec, listen: trigger.good, retries: {max: 2, backoff: 100ms}, opts: {shell: ${t({ sleep: "$DUR", failing: true })}}}
${head(spec("slow"))}      - {name: work, type: exec, listen: trigger.good, timeout: 1500ms, opts: {shell: ${work}}}
${head(spec("fragile"))}      - {name: work, type: exec, listen: trigger.good, opts: {shell: ${work}}}
      - {name: after, type: exec, listen: task.work.good, opts: {shell: ${quick}}}
${head(spec("fragile-lock"))}      - {name: work, type: exec, listen: trigger.good, opts: {shell: ${work}}}
`;
}

export interface Intent {
  /** Unique per chaos run: passed as value `key`, so any run can be traced to its intent. */
  readonly key: string;
  readonly flow: string;
  readonly values: Record<string, string>;
  /** When to trigger it, ms after the workload starts. */
  readonly atMs: number;
}

/** `runs` triggers spread over `windowMs`, flows and values drawn from `rng`. */
export function plan(rng: Rng, runs: number, windowMs: number): Intent[] {
  const out: Intent[] = [];
  for (let i = 0; i < runs; i++) {
    const f = rng.pick(FLOWS);
    out.push({ key: `k${i}`, flow: f.id, values: { ...f.values(rng), key: `k${i}` }, atMs: Math.round((windowMs * i) / runs + rng.between(0, windowMs / runs)) });
  }
  return out;
}
