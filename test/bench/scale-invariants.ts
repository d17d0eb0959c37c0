/**
 * What the scale harness (scale.ts) checks once its runs have ended, from what its simulated
 * hosts saw: claims (host, fencing token, when the claim's reply came) and releases (when
 * each was sent). Times are this one process's clock. A run is certainly holding its
 * resources and its flow's slot in Redis between its claim's reply and its release being
 * sent, so two such intervals that overlap are a violation, whatever the network did.
 */

export interface RunLog {
  readonly run: string;
  readonly kind: { readonly flowKey: string; readonly hostTags: readonly string[]; readonly resources: readonly string[]; readonly concurrency?: number };
  /** Adoption order. */
  readonly seq: number;
  /** When its addPend answered (performance.now()). */
  addedAt: number;
  readonly claims: { readonly host: string; readonly token: number; readonly at: number }[];
  releaseAt?: number;
  endedAt?: number;
  /** Taken by its adopting host as it was added (addPendTaking). */
  taken?: boolean;
  /** Arrived during the measured window. */
  measured: boolean;
}

export function checkScale(runs: readonly RunLog[], limit: number): string[] {
  const v: string[] = [];
  for (const r of runs) if (r.claims.length > 1) v.push(`run ${r.run} claimed ${r.claims.length} times (${r.claims.map((c) => c.host).join(", ")})`);
  const started = runs.filter((r) => r.claims[0] !== undefined);
  const held = (r: RunLog): [number, number] => [(r.claims[0] as { at: number }).at, r.releaseAt ?? Number.POSITIVE_INFINITY];

  // No two runs on one resource at once; and, as every run on a resource can run on any host
  // with nothing else holding it back, they start in adoption order (fencing tokens are
  // handed out in Redis's order of claims).
  const byResource = new Map<string, RunLog[]>();
  for (const r of started) for (const res of r.kind.resources) byResource.set(res, [...(byResource.get(res) ?? []), r]);
  for (const [res, rs] of byResource) {
    const byToken = [...rs].sort((a, b) => (a.claims[0]?.token ?? 0) - (b.claims[0]?.token ?? 0));
    for (let i = 1; i < byToken.length; i++) {
      const a = byToken[i - 1] as RunLog;
      const b = byToken[i] as RunLog;
      if (held(b)[0] < held(a)[1]) v.push(`resource ${res}: run ${b.run} held it (claimed at ${held(b)[0].toFixed(1)}) before run ${a.run} released it (${held(a)[1].toFixed(1)})`);
      if (b.seq < a.seq) v.push(`resource ${res}: run ${b.run} (adopted #${b.seq}) started after run ${a.run} (adopted #${a.seq})`);
    }
  }

  // A flow's concurrency: never more than its limit certainly active at once.
  const byFlow = new Map<string, RunLog[]>();
  for (const r of started) if (r.kind.concurrency !== undefined) byFlow.set(r.kind.flowKey, [...(byFlow.get(r.kind.flowKey) ?? []), r]);
  for (const [flow, rs] of byFlow) {
    const edges = rs.flatMap((r) => [
      { t: held(r)[0], d: 1 },
      { t: held(r)[1], d: -1 },
    ]);
    // Ends before starts at the same instant: touching intervals do not overlap.
    edges.sort((a, b) => a.t - b.t || a.d - b.d);
    let n = 0;
    let max = 0;
    for (const e of edges) max = Math.max(max, (n += e.d));
    if (max > limit) v.push(`flow ${flow}: ${max} runs active at once, limit ${limit}`);
  }
  return v;
}
