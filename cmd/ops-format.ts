/**
 * How the operators' commands print, in the manner of `gh`: a table with a header and
 * aligned columns on a terminal, tab-separated rows without a header for pipes and scripts,
 * and output lines as `<ISO ms> [flow.node] text`.
 */

/** A table: aligned with a header for people (`tty`), tab-separated rows for programs. */
export function formatTable(head: readonly string[], rows: readonly (readonly string[])[], tty: boolean): string[] {
  if (!tty) return rows.map((r) => r.map((c) => c.replace(/[\t\n]/g, " ")).join("\t"));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  return [line(head), ...rows.map(line)];
}

/** "3.2s", "4m10s", "2h5m": how long something took. */
export function elapsed(ms: number): string {
  if (ms < 0) return "0s";
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  const h = Math.floor(m / 60);
  return `${h}h${m % 60 ? `${m % 60}m` : ""}`;
}

/** "5s ago", "3m ago", "2h ago", "4d ago". */
export function age(at: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** A run summary's shape, as far as the commands read it (the API's JSON, checked where read). */
export interface RunRow {
  readonly ref: { readonly flow: string; readonly ver: number; readonly run: string; readonly execHost?: string };
  readonly state: string;
  readonly result?: string;
  readonly reason?: string;
  readonly waiting?: string;
  readonly trigger?: { readonly id?: string; readonly by?: string };
  readonly adoptedAt: number;
  readonly startedAt?: number;
  readonly endedAt?: number;
  readonly paused?: boolean;
}

export const RUN_HEAD = ["STATUS", "RUN", "FLOW", "TRIGGER", "HOST", "ELAPSED", "AGE"] as const;

/** The status column: the result of an ended run, else its state. */
export function runStatus(r: RunRow): string {
  if (r.state === "archived") return r.result ?? "ended";
  if (r.paused === true) return "paused";
  return r.state;
}

export function runCells(r: RunRow, now = Date.now()): string[] {
  const took = r.startedAt !== undefined ? elapsed((r.endedAt ?? now) - r.startedAt) : "-";
  return [runStatus(r), r.ref.run, `${r.ref.flow}/${r.ref.ver}`, `${r.trigger?.id ?? "?"}${r.trigger?.by !== undefined ? ` by ${r.trigger.by}` : ""}`, r.ref.execHost ?? "-", took, age(r.adoptedAt, now)];
}

/** An output line as `floe run` and the console print it, without the run's short id: one run is followed. */
export function logLine(flow: string, node: string, at: number, text: string): string {
  return `${new Date(at).toISOString()} [${flow}.${node}] ${text}`;
}

/** Whether an API answer looks like a run summary (the fields a row reads). */
export function isRunRow(x: unknown): x is RunRow {
  if (x === null || typeof x !== "object") return false;
  const r = x as Record<string, unknown>;
  const ref = r["ref"] as Record<string, unknown> | undefined;
  return ref !== null && typeof ref === "object" && typeof ref["run"] === "string" && typeof ref["flow"] === "string" && typeof r["state"] === "string" && typeof r["adoptedAt"] === "number";
}
