/**
 * decide() picks a pend's host (hub/dispatch.ts): the host with the most free slots, among
 * equals the host that adopted the run, then the first host at or after the run's place on
 * the ring (FNV-1a of the names; equal places by name). Seeded: for random hosts and pends
 * that need only tags and slots (some adopted by one of the hosts, some by a host not among
 * them), deciding for every host or for one (`forHost`), it gives each pend the host a plain
 * reference gives it — the rule written out (filter the candidates, measure each one's
 * distance round the ring, reduce).
 */
import t from "tap";
import { decide, type HostView, type PendView } from "../../hub/dispatch.js";
import { mulberry32Floats } from "../helpers/mulberry32.js";

const SEEDS = 300;

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

type Pend = PendView & { readonly adoptedBy?: string };

function reference(pends: readonly Pend[], hosts: readonly HostView[], forHost?: string): { run: string; host: string }[] {
  const free = new Map(hosts.map((h) => [h.name, h.freeSlots]));
  const out: { run: string; host: string }[] = [];
  for (const p of pends) {
    const candidates = hosts.filter((h) => p.hostTags.every((x) => h.tags.includes(x)) && (free.get(h.name) ?? 0) > 0 && (forHost === undefined || h.name === forHost));
    if (candidates.length === 0) continue;
    // Clockwise from the run's place to the host's, round a ring of 2^32 places.
    const distance = (h: HostView): number => (h.name === p.adoptedBy ? -1 : (fnv(h.name) - fnv(p.run) + 2 ** 32) % 2 ** 32);
    const host = candidates.reduce((a, b) => {
      const fa = free.get(a.name) ?? 0;
      const fb = free.get(b.name) ?? 0;
      if (fb !== fa) return fb > fa ? b : a;
      const da = distance(a);
      const db = distance(b);
      return db < da || (db === da && b.name < a.name) ? b : a;
    });
    out.push({ run: p.run, host: host.name });
    free.set(host.name, (free.get(host.name) ?? 0) - 1);
  }
  return out;
}

t.test(`decide gives each pend the reference's host (${SEEDS} seeds)`, async (t) => {
  const failures: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rnd = mulberry32Floats(seed);
    const hosts: HostView[] = Array.from({ length: 1 + Math.floor(rnd() * 30) }, (_, i) => ({ name: `h${i}-${Math.floor(rnd() * 1000)}`, tags: rnd() < 0.5 ? ["linux"] : [], freeSlots: Math.floor(rnd() * 4) }));
    const adopter = (): string | undefined => {
      const x = rnd();
      return x < 0.4 ? hosts[Math.floor(rnd() * hosts.length)]?.name : x < 0.6 ? "not-a-host" : undefined;
    };
    const pends: Pend[] = Array.from({ length: Math.floor(rnd() * 50) }, (_, i) => {
      const by = adopter();
      return { run: `r${seed}-${i}`, flowKey: "f/1", hostTags: rnd() < 0.3 ? ["linux"] : [], resources: [], ...(by !== undefined ? { adoptedBy: by } : {}) };
    });
    const forHost = rnd() < 0.25 ? hosts[Math.floor(rnd() * hosts.length)]?.name : undefined;
    const got = JSON.stringify(decide({ pends, hosts, held: new Map(), activeByFlow: new Map(), ...(forHost !== undefined ? { forHost } : {}) }).assign);
    const want = JSON.stringify(reference(pends, hosts, forHost));
    if (got !== want) failures.push(`seed ${seed}: decide ${got}, reference ${want}`);
  }
  t.same(failures, [], "every seed alike");
});
