/**
 * hub/tick-phase.ts: a cluster's hosts tick on the same instants, in groups of at most
 * TICK_GROUP, and a host's ticks stay a period apart whatever its timer does.
 */
import t from "tap";
import { nextTickAt, TICK_GROUP, tickPhase } from "../../hub/tick-phase.js";

t.test("up to TICK_GROUP hosts share phase 0; past it, the groups spread evenly and hold about TICK_GROUP each", async (t) => {
  const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `host-${i}`);
  t.same(new Set(names(TICK_GROUP).map((h) => tickPhase(h, TICK_GROUP))), new Set([0]), "one group");
  t.equal(tickPhase("h1", undefined), 0, "before a heartbeat: 0");
  const hosts = 500;
  const groups = Math.ceil(hosts / TICK_GROUP);
  const counts = new Map<number, number>();
  for (const h of names(hosts)) {
    const p = tickPhase(h, hosts);
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  t.same([...counts.keys()].filter((p) => !(p >= 0 && p < 1 && Math.abs(p * groups - Math.round(p * groups)) < 1e-9)), [], "every phase is a group's: k ÷ groups");
  t.equal(counts.size, groups, `${groups} groups`);
  t.ok(Math.max(...counts.values()) <= 2 * TICK_GROUP, `no group more than twice TICK_GROUP (largest ${Math.max(...counts.values())})`);
  t.equal(tickPhase("host-7", hosts), tickPhase("host-7", hosts), "the same on every host");
});

t.test("nextTickAt: on the phase's instants, a period apart while the phase holds", async (t) => {
  const P = 500;
  t.equal(nextTickAt(10_123, undefined, P, 0), 10_500, "the first: the next instant");
  t.equal(nextTickAt(10_000, undefined, P, 0), 10_500, "strictly after now");
  t.equal(nextTickAt(10_123, undefined, P, 0.5), 10_250, "phase ½: 250 past the period");
  t.equal(nextTickAt(10_499, 10_500, P, 0), 11_000, "a timer 1 ms early: the next one, not another at once");
  t.equal(nextTickAt(10_530, 10_500, P, 0), 11_000, "late: the cadence holds");
  t.equal(nextTickAt(10_900, 10_500, P, 0), 11_000, "very late: still the next instant");
  t.equal(nextTickAt(11_200, 10_500, P, 0), 11_500, "a tick missed (the loop was blocked): the one after");
  t.equal(nextTickAt(500, 10_500, P, 0), 1000, "the clock stepped back 10 s: the next instant from now, not 10 s later");
  t.equal(nextTickAt(60_123, 10_500, P, 0), 60_500, "stepped forward: the next instant from now");
  // A phase that moves (the cluster grew past a group): one gap within (½, 1½] periods.
  const wrong: string[] = [];
  for (let last = 0; last < P; last += 37) {
    for (const phase of [0, 0.1, 0.25, 0.5, 0.9]) {
      const at = nextTickAt(last + 3, last, P, phase);
      if (!(at - last > P / 2 && at - last <= 1.5 * P && (((at - phase * P) % P) + P) % P < 1)) wrong.push(`last ${last}, phase ${phase}: ${at}`);
    }
  }
  t.same(wrong, [], "a moved phase: one gap within (½, 1½] periods, on the new phase's instant");
});
