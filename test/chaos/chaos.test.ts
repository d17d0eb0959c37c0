/**
 * The chaos suite, small: a fixed seed, a few dozen runs over half a minute on three hosts
 * while hosts are killed and frozen, the brokers restarted and a host's disk filled; every
 * invariant must hold with zero violations (`npm run chaos` is the larger version).
 */
import t from "tap";
import { formatReport, runChaos } from "./suite.js";

t.test("nothing is lost under sustained faults (seed 20261122)", async (t) => {
  const report = await runChaos({ seed: 20261122, runs: 45, windowMs: 35_000, faultGapMs: [1_000, 3_000], dir: t.testdir({}), log: (l) => t.comment(l) });
  for (const line of formatReport(report)) t.comment(line);
  t.ok(report.runs.adopted > 0, "runs were adopted");
  t.ok(Object.values(report.faults).reduce((a, b) => a + b, 0) >= 4, "faults were injected");
  for (const i of report.invariants) t.same(i.violations, [], i.name);
});

t.test("nothing is lost under partitions of awake hosts (seed 20261205)", async (t) => {
  const report = await runChaos({ seed: 20261205, runs: 36, windowMs: 30_000, faultGapMs: [800, 2_000], partitions: true, dir: t.testdir({}), log: (l) => t.comment(l) });
  for (const line of formatReport(report)) t.comment(line);
  t.ok(report.runs.adopted > 0, "runs were adopted");
  t.ok(Object.values(report.faults).filter((n) => n > 0).length >= 4, "most partition kinds were injected");
  for (const i of report.invariants) t.same(i.violations, [], i.name);
});
