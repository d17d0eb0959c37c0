/**
 * The lease's timing (hub/lease.ts), against a scripted cluster state: a renewal vouches
 * for lease − margin from when it was sent; past that the host stands down; a stood-down
 * host probes before it renews and regains its runs only through a renewal that vouches.
 */
import { pino } from "pino";
import t, { type Test } from "tap";
import { Lease, leaseMargin, type Renewal } from "../../hub/lease.js";
import { until } from "../helpers/hub.js";

const LEASE = 400; // margin 100 ms: vouches for 300 ms, renews every 100 ms

interface Script {
  renewals: number;
  /** Date.now() as each renewal was sent. */
  sentAt: number[];
  probes: number;
  standDowns: number;
  regained: Renewal[];
  /** How long the next renewals and probes take; Infinity hangs them (a cut link). */
  renewMs: number;
  probeMs: number;
  outcome: Renewal;
  /** Lets hung calls finish (the link heals). */
  heal(): void;
}

function scripted(o: { selfFence?: boolean; tickPhase?: number } = {}): { lease: Lease; s: Script } {
  const hung = new Set<() => void>();
  const s: Script = {
    renewals: 0, sentAt: [], probes: 0, standDowns: 0, regained: [], renewMs: 0, probeMs: 0, outcome: "renewed",
    heal: () => {
      for (const h of hung) h();
      hung.clear();
    },
  };
  const wait = (ms: number): Promise<void> => (ms === Infinity ? new Promise<void>((r) => hung.add(r)) : new Promise((r) => setTimeout(r, ms)));
  const lease = new Lease(LEASE, {
    renew: async () => {
      s.renewals++;
      s.sentAt.push(Date.now());
      await wait(s.renewMs);
      return s.outcome;
    },
    probe: async () => {
      s.probes++;
      await wait(s.probeMs);
    },
    standDown: () => void s.standDowns++,
    regained: async (out) => void s.regained.push(out),
    selfFence: o.selfFence ?? true,
    ...(o.tickPhase !== undefined ? { tickPhase: () => o.tickPhase ?? 0 } : {}),
    log: pino({ level: "silent" }),
  });
  return { lease, s };
}

/** A lease under test, stopped (its hung calls healed) when the test ends. */
function underTest(t: Test, o: { selfFence?: boolean; tickPhase?: number } = {}): { lease: Lease; s: Script } {
  const x = scripted(o);
  t.teardown(async () => {
    x.s.renewMs = 0;
    x.s.heal();
    await x.lease.stop();
  });
  return x;
}

t.test("the margin is a quarter of the lease, within 100 ms … 10 s", async (t) => {
  t.same([leaseMargin(2000), leaseMargin(300), leaseMargin(600_000)], [500, 100, 10_000]);
});

t.test("renewals go out on the wall clock's instants at the host's phase, a period apart (hub/tick-phase.ts)", async (t) => {
  for (const phase of [0, 0.5]) {
    const { lease, s } = underTest(t, { tickPhase: phase });
    // Begun half a period off the phase: ticks counted from begin() would all miss it.
    const every = lease.renewEveryMs;
    const off = (((Date.now() - phase * every - every / 2) % every) + every) % every;
    await new Promise((r) => setTimeout(r, every - off));
    await lease.begin();
    await until(() => s.renewals >= 13, 10_000, "renewals");
    await lease.stop();
    // The first renewal is begin()'s, at once; the ticks' follow. A timer fires a little late
    // (rarely, on a busy machine, a lot), never much early: most ticks sit just after the instant.
    const offsets = s.sentAt.slice(1, 13).map((at) => (((at - phase * every) % every) + every) % every);
    const onTime = offsets.filter((x) => x < every / 4 || x >= every - 2).length;
    t.ok(onTime >= 8, `phase ${phase}: ${onTime} of 12 ticks within a quarter period after their instant (offsets ${offsets.join(", ")} ms)`);
  }
});

t.test("renewals that come back keep it vouched; a cut link stands it down once, within lease − margin", async (t) => {
  const { lease, s } = underTest(t);
  await lease.begin();
  t.ok(lease.vouched, "vouched after the first renewal");
  await until(() => s.renewals >= 5, 5000, "renewals");
  t.ok(lease.vouched && s.standDowns === 0, `still vouched after ${s.renewals} renewals`);
  s.renewMs = Infinity;
  const cut = performance.now();
  await until(() => s.standDowns > 0, 5000, "a stand-down");
  const after = performance.now() - cut;
  t.ok(after <= LEASE - lease.marginMs + 50, `stood down ${Math.round(after)} ms after the cut (last renewal sent before it)`);
  t.notOk(lease.vouched, "not vouched any more");
  await new Promise((r) => setTimeout(r, 300));
  t.equal(s.standDowns, 1, "once");
});

t.test("a stood-down host probes; a slow probe does not renew; a fast one renews and regains", async (t) => {
  const { lease, s } = underTest(t);
  await lease.begin();
  s.renewMs = Infinity;
  await until(() => s.standDowns === 1, 5000, "a stand-down");
  // The link heals for renewals once the held one is too old to vouch (its reply comes
  // back past its window), but probes are slow.
  await new Promise((r) => setTimeout(r, LEASE));
  s.renewMs = 0;
  s.heal();
  s.probeMs = 200; // more than half of the 300 ms window
  const renewalsThen = s.renewals;
  await until(() => s.probes >= 1, 5000, "a probe");
  await new Promise((r) => setTimeout(r, 700));
  t.equal(s.renewals, renewalsThen, "no renewal while the probes are slow: the lease lapses, the runs move");
  t.same(s.regained, [], "nothing regained");
  s.probeMs = 0;
  s.outcome = "expired";
  await until(() => s.regained.length > 0, 5000, "regained");
  t.same(s.regained, ["expired"], "regained once, with what the state said");
  await until(() => lease.vouched, 2000, "vouched again");
  const ac = new AbortController();
  t.equal(await lease.whenVouched(ac.signal), true, "whenVouched answers at once when vouched");
});

t.test("whenVouched waits for a renewal that vouches, and gives up on abort", async (t) => {
  const { lease, s } = underTest(t);
  await lease.begin();
  s.renewMs = Infinity;
  await until(() => !lease.vouched, 5000, "the lease to stop vouching");
  const ac = new AbortController();
  const waiting = lease.whenVouched(ac.signal);
  ac.abort();
  t.equal(await waiting, false, "an abort answers false");
  const again = lease.whenVouched(new AbortController().signal);
  s.renewMs = 0;
  s.outcome = "renewed";
  s.heal();
  t.equal(await again, true, "a renewal that vouches answers true");
});

t.test("an embedded host never stands down (no other host can take its runs)", async (t) => {
  const { lease, s } = underTest(t, { selfFence: false });
  await lease.begin();
  s.renewMs = Infinity;
  await new Promise((r) => setTimeout(r, 800));
  t.equal(s.standDowns, 0);
});

t.test("begin twice is refused; stop waits for the renewal in flight", async (t) => {
  const { lease, s } = scripted();
  await lease.begin();
  await t.rejects(lease.begin(), /already begun/);
  s.renewMs = 150;
  await until(() => s.renewals >= 2, 2000, "a renewal in flight");
  const t0 = performance.now();
  await lease.stop();
  t.ok(performance.now() - t0 >= 20, "stop waited for it");
  const n = s.renewals;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(s.renewals, n, "no renewal after the stop");
});

t.test("onTick: listeners run at each tick, in the turn the renewal is sent, until removed or stopped", async (t) => {
  const { lease, s } = underTest(t);
  const seen: number[] = [];
  const off = lease.onTick(() => seen.push(s.renewals));
  await lease.begin();
  t.same(seen, [], "the first renewal (begin) is not a tick");
  await until(() => seen.length >= 3, 5000, "ticks");
  // Each listener ran after its tick's renewal had been sent (renew() counts on its call).
  t.same(seen.slice(0, 3), [2, 3, 4], "one call per tick, with the tick's renewal already sent");
  off();
  const n = seen.length;
  await until(() => s.renewals >= n + 3, 5000, "more renewals");
  t.equal(seen.length, n, "removed: no more calls");
  lease.onTick(() => seen.push(-1));
  await lease.stop();
  const r = s.renewals;
  await new Promise((res) => setTimeout(res, 3 * lease.renewEveryMs));
  t.equal(s.renewals, r, "stopped: no renewal");
  t.notOk(seen.includes(-1), "and no tick");
});
