/**
 * The dispatcher's rule, as a pure function so that every mode (embedded, cluster) and the
 * benchmarks decide the same way: walk the pending runs in adoption order and start each
 * one that can start now — a live host whose tags include the flow's host-tags has a free
 * slot, none of its resource tags is held, the flow's concurrency is not reached. Among
 * pends that need the same resource the first adopted starts first; a pend blocked on a
 * resource never holds back pends that need other things. Every pend left waiting gets
 * the reason, in words.
 */
import { tagsMatch } from "../flows/tags.js";
import type { ParkedHead, ParkReason, PendView } from "../store/cluster-state.js";
import { reuseSpaceFlow } from "./pend.js";
import { fnv1a } from "./fnv1a.js";

export type { PendView };

export interface HostView {
  readonly name: string;
  readonly tags: readonly string[];
  readonly freeSlots: number;
}

export interface DispatchInput {
  /** In adoption order (oldest first); `adoptedBy`: the host that adopted it, if known. */
  readonly pends: readonly (PendView & { readonly adoptedBy?: string })[];
  /** Live hosts only. */
  readonly hosts: readonly HostView[];
  /** resource → run holding it. */
  readonly held: ReadonlyMap<string, string>;
  /** flowKey → active runs. */
  readonly activeByFlow: ReadonlyMap<string, number>;
  /** Only pends this host may take (a host claiming work for itself); all hosts when absent. */
  readonly forHost?: string;
  /** The host-tag sets of pends parked for a slot (Snapshot.parkedForSlots): see DispatchDecision.slotHeads. */
  readonly parkedForSlots?: readonly (readonly string[])[];
}

/**
 * Among hosts with as many free slots, a run goes first to the host that adopted it (it has
 * the run's trigger, and taking it there costs no wake-up of another host and no pass of that
 * host: at a few runs a second spread over idle hosts, a third of a run's round trips to
 * Redis), then to the first host at or after the run's place on a ring of the hosts
 * (consistent hashing, FNV-1a of the names; equal places by name). Every host deciding over
 * the same state gives a run to the same host — so two passes do not both claim it — runs
 * spread over equal hosts, and a run's host changes only when that host fills up or a host
 * lands between the two on the ring. Finding it is a binary search, not a hash per host:
 * a pass decides for every host, and rendezvous hashing (a hash of each run and host pair)
 * made a decision pends × hosts of work — at 500 hosts, most of a host's CPU under load.
 */
const ringPlace = fnv1a;

/** Host names recur in every decision: their places are kept (bounded: cleared when large). */
const hostPlaces = new Map<string, number>();
function hostPlace(name: string): number {
  let p = hostPlaces.get(name);
  if (p === undefined) {
    if (hostPlaces.size >= 100_000) hostPlaces.clear();
    p = ringPlace(name);
    hostPlaces.set(name, p);
  }
  return p;
}

interface RingHost {
  readonly name: string;
  readonly place: number;
}

function ringOrder(a: RingHost, b: RingHost): number {
  return a.place - b.place || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** The index of the first host of `ring` (in ring order) at or after `h`: where it is, or would be inserted. */
function ringIndex(ring: readonly RingHost[], h: RingHost): number {
  let lo = 0;
  let hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ringOrder(ring[mid] as RingHost, h) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface DispatchDecision {
  readonly assign: readonly { readonly run: string; readonly host: string }[];
  readonly waiting: ReadonlyMap<string, string>;
  /**
   * Pends that wait on something whose change alone can let them start, to be parked on it
   * (ClusterState.park) so that no pass looks at them again until it changes: no live host
   * with their tags, their only resource held, their flow's concurrency reached, or every
   * live host with their tags full before this decision (the last two only when they need no
   * resource). A pend behind an earlier pend, or on one of several resources, or waiting for
   * a slot with a resource, stays: its place in its resources' queues is decided on the list.
   */
  readonly park: readonly { readonly run: string; readonly on: ParkReason }[];
  /**
   * Resources free before this decision, and the pend on the list that took one (started
   * with it) or is first in line for it: a pend parked on such a resource that is older
   * must be looked at before this decision is acted on.
   */
  readonly firstInLine: ReadonlyMap<string, string>;
  /**
   * Per tag set of pends parked for a slot (DispatchInput.parkedForSlots) whose oldest must be
   * looked at before this decision is acted on: a live host with the tags keeps a free slot
   * (no `before`), or gave one to a pend younger than it may be (`before`: the youngest such).
   * A decision over the whole list would have given it that slot.
   */
  readonly slotHeads: readonly ParkedHead[];
}

/**
 * Whether parking these pends may bring others back: a pend parked for its tags or its
 * flow's concurrency holds no resource back, so the oldest pend parked on a free resource of
 * its returns to the list — and a decision made without it must be made again before
 * anything is claimed (it may be older than what this decision started).
 */
export function parkingMayFree(parked: readonly { readonly on: ParkReason; readonly resources: readonly string[] }[]): boolean {
  return parked.some((p) => p.on.kind !== "resource" && p.resources.length > 0);
}

export function resourceLabel(r: string): string {
  const flow = reuseSpaceFlow(r);
  return flow !== undefined ? `the reused workspace of ${flow}` : `resource "${r}"`;
}

/** What the pends that need the same host tags share within one decision. */
interface TagGroup {
  readonly eligible: readonly RingHost[];
  /** Why such a pend waits when no eligible host may take it now. */
  readonly noHost: string;
  readonly noSlot: string;
  /**
   * The hosts that may take its pends and have a free slot, by free slots, each level in
   * ring order; `top`: the most free slots any has (0: none has one — and since free slots
   * only go down during a decision, none will).
   */
  readonly levels: Map<number, RingHost[]>;
  readonly members: ReadonlySet<string>;
  top: number;
  /** Whether every eligible host was full before the decision (its pends may be parked for a slot); computed when first asked. */
  fullAtStart?: boolean;
}

/**
 * The hosts of the last decision and, per host-tag set, those of them with the tags in ring
 * order. A host decides pass after pass over the same registry (its state caches the host
 * table), so matching tags and sorting the ring
 * are done once per registry change, not once per pass: at 500 hosts they were most of what
 * a pass cost once the hash per host and run was gone.
 */
let ringMemo: { hosts: readonly HostView[]; readonly byTags: Map<string, readonly RingHost[]> } | undefined;

function sameHosts(a: readonly HostView[], b: readonly HostView[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as HostView;
    const y = b[i] as HostView;
    if (x.name !== y.name || (x.tags !== y.tags && (x.tags.length !== y.tags.length || x.tags.some((t, j) => t !== y.tags[j])))) return false;
  }
  return true;
}

/** The hosts with these tags, in ring order. */
function eligibleRing(hosts: readonly HostView[], hostTags: readonly string[], key: string): readonly RingHost[] {
  if (ringMemo === undefined || !sameHosts(ringMemo.hosts, hosts)) ringMemo = { hosts, byTags: new Map() };
  ringMemo.hosts = hosts; // the newest array, so that the next pass's identity check is quick
  let ring = ringMemo.byTags.get(key);
  if (ring === undefined) {
    ring = hosts.filter((h) => tagsMatch(h.tags, hostTags)).map((h) => ({ name: h.name, place: hostPlace(h.name) }));
    (ring as RingHost[]).sort(ringOrder);
    ringMemo.byTags.set(key, ring);
  }
  return ring;
}

function tagGroup(input: DispatchInput, hostTags: readonly string[], key: string, free: ReadonlyMap<string, number>): TagGroup {
  const eligible = eligibleRing(input.hosts, hostTags, key);
  const mine = input.forHost !== undefined && eligible.every((h) => h.name !== input.forHost);
  const candidates: RingHost[] = [];
  for (const h of eligible) if ((free.get(h.name) ?? 0) > 0 && (input.forHost === undefined || h.name === input.forHost)) candidates.push(h);
  const levels = new Map<number, RingHost[]>();
  let top = 0;
  for (const c of candidates) {
    const f = free.get(c.name) ?? 0;
    let level = levels.get(f);
    if (level === undefined) levels.set(f, (level = []));
    level.push(c);
    top = Math.max(top, f);
  }
  return {
    eligible,
    noHost: hostTags.length === 0 ? "no live host" : `no live host has tags [${hostTags.join(", ")}]`,
    // Not a list of hosts: a host joining or leaving must not rewrite every waiting reason.
    noSlot: mine ? `for another host: tags [${hostTags.join(", ")}]` : hostTags.length === 0 ? "no free slot on any live host" : `no free slot on any live host with tags [${hostTags.join(", ")}]`,
    levels,
    members: new Set(candidates.map((c) => c.name)),
    top,
  };
}

/** The host a pend of this group goes to (see ringPlace), or none with a free slot. */
function chooseHost(g: TagGroup, p: { readonly run: string; readonly adoptedBy?: string }, free: ReadonlyMap<string, number>): string | undefined {
  if (g.top === 0) return undefined;
  if (p.adoptedBy !== undefined && g.members.has(p.adoptedBy) && free.get(p.adoptedBy) === g.top) return p.adoptedBy;
  const level = g.levels.get(g.top) as RingHost[];
  const i = ringIndex(level, { name: "", place: ringPlace(p.run) });
  return (level[i] ?? level[0])?.name;
}

/** A host took a run: one free slot less, in every group it is a member of. */
function takeSlot(groups: Iterable<TagGroup>, host: string, free: Map<string, number>): void {
  const f = free.get(host) ?? 0;
  free.set(host, f - 1);
  const me: RingHost = { name: host, place: hostPlace(host) };
  for (const g of groups) {
    if (!g.members.has(host)) continue;
    const from = g.levels.get(f);
    const at = from === undefined ? -1 : ringIndex(from, me);
    if (from === undefined || from[at]?.name !== host) continue; // not among this group's candidates
    from.splice(at, 1);
    if (f - 1 > 0) {
      let to = g.levels.get(f - 1);
      if (to === undefined) g.levels.set(f - 1, (to = []));
      to.splice(ringIndex(to, me), 0, me);
    }
    while (g.top > 0 && (g.levels.get(g.top)?.length ?? 0) === 0) g.top--;
  }
}

export function decide(input: DispatchInput): DispatchDecision {
  const free = new Map(input.hosts.map((h) => [h.name, h.freeSlots]));
  /** Free slots before the decision, made when first needed (a pend that found no slot). */
  let startFree: Map<string, number> | undefined;
  const held = new Map(input.held);
  const active = new Map(input.activeByFlow);
  /** Resources an earlier, still-waiting pend is first in line for. */
  const queued = new Map<string, string>();
  const assign: { run: string; host: string }[] = [];
  const waiting = new Map<string, string>();
  const park: { run: string; on: ParkReason }[] = [];
  // Long lists repeat a few host-tag sets: match hosts and build reasons once per set, not
  // once per pend (the hub decides on every adoption, so this is its per-pend cost).
  const groups = new Map<string, TagGroup>();

  for (const p of input.pends) {
    const key = p.hostTags.join("\0");
    let g = groups.get(key);
    if (g === undefined) {
      g = tagGroup(input, p.hostTags, key, free);
      groups.set(key, g);
    }
    if (g.eligible.length === 0) {
      waiting.set(p.run, g.noHost);
      park.push({ run: p.run, on: { kind: "tags" } });
      continue;
    }
    const heldBy = p.resources.find((r) => held.has(r));
    if (heldBy !== undefined) {
      waiting.set(p.run, `waiting for ${resourceLabel(heldBy)} held by run ${held.get(heldBy)}`);
      // Held by a run of an earlier decision (not one this decision assigned): parked on it.
      if (p.resources.length === 1 && input.held.has(heldBy)) park.push({ run: p.run, on: { kind: "resource", resource: heldBy } });
      for (const r of p.resources) if (!held.has(r) && !queued.has(r)) queued.set(r, p.run);
      continue;
    }
    const behind = p.resources.find((r) => queued.has(r));
    if (behind !== undefined) {
      waiting.set(p.run, `waiting for ${resourceLabel(behind)}, after run ${queued.get(behind)}`);
      continue;
    }
    const n = active.get(p.flowKey) ?? 0;
    if (p.concurrency !== undefined && n >= p.concurrency) {
      waiting.set(p.run, `flow concurrency limit ${p.concurrency} reached`);
      // Only a pend that needs no resource: one that does may, once a resource of it is held,
      // keep its other resources for itself (see above), which a parked pend could not.
      if (p.resources.length === 0 && (input.activeByFlow.get(p.flowKey) ?? 0) >= p.concurrency) park.push({ run: p.run, on: { kind: "concurrency", limit: p.concurrency } });
      continue;
    }
    // The host with the most free slots (spreads load); among equals, the one that adopted
    // the run, then the first on the ring from the run's place.
    const host = chooseHost(g, p, free);
    if (host === undefined) {
      waiting.set(p.run, g.noSlot);
      // Full before this decision too: only a slot freed on one of them can start it (a
      // release, a host joining): parked for a slot. Not when full because of this decision's
      // own assignments (their claims may fail), nor in a decision for one host alone.
      if (p.resources.length === 0 && input.forHost === undefined) {
        startFree ??= new Map(input.hosts.map((h) => [h.name, h.freeSlots]));
        const before = startFree;
        g.fullAtStart ??= g.eligible.every((h) => (before.get(h.name) ?? 0) <= 0);
        if (g.fullAtStart) park.push({ run: p.run, on: { kind: "slots" } });
      }
      // Keep its resources for it, so later pends do not overtake it.
      for (const r of p.resources) if (!queued.has(r)) queued.set(r, p.run);
      continue;
    }
    assign.push({ run: p.run, host });
    takeSlot(groups.values(), host, free);
    active.set(p.flowKey, n + 1);
    for (const r of p.resources) held.set(r, p.run);
  }
  const firstInLine = new Map(queued);
  for (const [r, run] of held) if (!input.held.has(r)) firstInLine.set(r, run);
  return { assign, waiting, park, firstInLine, slotHeads: slotHeads(input, assign, free) };
}

/** DispatchDecision.slotHeads: a look at each tag set parked for a slot, and at its live hosts. */
function slotHeads(input: DispatchInput, assign: readonly { readonly run: string; readonly host: string }[], free: ReadonlyMap<string, number>): ParkedHead[] {
  const sets = input.parkedForSlots ?? [];
  if (sets.length === 0 || input.forHost !== undefined) return [];
  // Each host's youngest assignment (the decision assigns in adoption order).
  const last = new Map<string, number>();
  assign.forEach((a, i) => last.set(a.host, i));
  const out: ParkedHead[] = [];
  for (const hostTags of sets) {
    let spare = false;
    let youngest = -1;
    for (const h of eligibleRing(input.hosts, hostTags, hostTags.join("\0"))) {
      if ((free.get(h.name) ?? 0) > 0) {
        spare = true;
        break;
      }
      youngest = Math.max(youngest, last.get(h.name) ?? -1);
    }
    if (spare) out.push({ hostTags });
    else if (youngest >= 0) out.push({ hostTags, before: (assign[youngest] as { run: string }).run });
  }
  return out;
}
