/**
 * `on-update` (DESIGN §6.2): what a reload that changes a flow's definition does to its runs
 * of the old definition — `keep` them (the default), `abort` them (cancelled, "flow updated
 * to …"), or `drain` them (new triggers are adopted but held, pending "draining runs of the
 * previous definition", until every run of an older definition has ended).
 *
 * A definition is named by its content hash (definitionHash); every run records the hash of
 * the definition it was adopted with (RunRecord.def), and so does its summary.
 *
 * Which definition wins in a cluster, when hosts load configs at different times: **the
 * newest load that changed it**. A host that loads a flow definition different from the one
 * published in the shared state — by a reload (SIGHUP), or by starting with it — publishes
 * its definition, hash and time; every host reads the published definitions of its flows
 * about every second (with a renewal of its lease: Lease.onTick) and, from then on, adopts new triggers of that flow with the published
 * definition — also a host whose own file is older — and applies the published
 * definition's on-update to the runs it holds. A host that starts with the published
 * definition changes nothing. (Joining the published one at start instead would let a
 * definition kept in Redis from before a whole-cluster restart outlive the files every host
 * was restarted with.)
 *
 * Each publish also changes one small value, the publish mark; the once-a-second look reads
 * that mark and reads the definitions only when it moved (and every FULL_LOOK_MS anyway, for a
 * publisher that left no mark). In a cluster the lease's renewals read the mark with them
 * (ClusterState.followValue): the look costs no request of its own, whatever the flows.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { Config, Flow } from "../flows/model.js";
import type { ClusterState } from "./cluster-state.js";
import { coerceError } from "./errors.js";
import type { Finisher } from "./finisher.js";
import { pendOf } from "./pend.js";
import type { Publisher } from "./publisher.js";
import { parseRunRecord, type RunRecord } from "./run-record.js";
import type { RunTable } from "./run-table.js";
import { isObj, parseRunSummary } from "./wire-checks.js";
import { now } from "../store/clock.js";

/** How often a clustered host reads the published definitions, and a draining flow looks for old runs. */
const LOOK_EVERY_MS = 1000;

/** How often the look reads every published definition even though the publish mark has not moved. */
const FULL_LOOK_MS = 30_000;

/** The shared value every publish changes (its hash, time and host: never written twice alike). */
const PUBLISH_MARK = "def-published";

export const DRAINING_REASON = "draining runs of the previous definition";

/** The content hash of a flow definition: 12 hex digits of SHA-256 over its model. */
export function definitionHash(flow: Flow): string {
  return createHash("sha256").update(JSON.stringify(flow)).digest("hex").slice(0, 12);
}

/** The definition a run was adopted with (runs recorded before `def` existed: their snapshot's). */
export function defOf(r: Pick<RunRecord, "def" | "flow">): string {
  return r.def ?? definitionHash(r.flow);
}

interface Published {
  readonly hash: string;
  readonly at: number;
  readonly host: string;
  readonly flow: Flow;
}

export interface OnUpdateDeps {
  readonly host: string;
  readonly table: RunTable;
  readonly state: ClusterState;
  readonly finisher: Finisher;
  readonly publisher: Publisher;
  readonly clustered: boolean;
  readonly log: Logger;
  config(): Config;
  /** Pends went on the shared list: the dispatcher looks. */
  released(): void;
  /**
   * A cluster host's lease (Lease.onTick): looks go with its renewals, at the first one at
   * least a second after the last look, so Redis serves both in one wake-up.
   */
  readonly ticks?: { onTick(fn: () => void): () => void };
}

/** The flow a new trigger of `id` runs with by this host's config: its highest version. */
function newestOf(config: Config, id: string): Flow | undefined {
  return config.flows.filter((f) => f.id === id).reduce<Flow | undefined>((best, f) => (best === undefined || f.ver > best.ver ? f : best), undefined);
}

function publishedKey(flow: string): string {
  return `def-${flow}`;
}

export class OnUpdate {
  /** Flows draining: the definition their new runs are of. */
  private readonly draining = new Map<string, string>();
  /** New runs held while their flow drains. */
  private readonly held = new Map<string, RunRecord>();
  /** Cluster: the published definition of each flow, as last read. */
  private readonly published = new Map<string, Published>();
  /** The publish mark at the last look that read every definition, and when that was (performance.now()). */
  private lastFull: { readonly mark: string | undefined; readonly at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopTicks: (() => void) | undefined;
  /** When the last look started (performance.now()). */
  private checkedAt = Number.NEGATIVE_INFINITY;
  private looking = false;
  private stopped = false;

  constructor(private readonly d: OnUpdateDeps) {}

  /** The host started: publishes its definitions where they differ from the published ones, and follows them. */
  async start(): Promise<void> {
    if (this.d.clustered) {
      for (const f of this.flowsOf(this.d.config())) {
        if (parsePublished(await this.d.state.getValue(publishedKey(f.id)))?.hash !== definitionHash(f)) await this.publish(f);
      }
      await this.look();
    }
    if (this.d.ticks !== undefined) {
      this.d.state.followValue(PUBLISH_MARK);
      this.stopTicks = this.d.ticks.onTick(() => this.ticked());
    }
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.stopTicks?.();
  }

  /** A reload: each flow whose definition changed is published (cluster) and its on-update applied. */
  reloaded(before: Config, after: Config): void {
    // Flows this host did not have before: their published definitions are read at the next look.
    this.lastFull = undefined;
    void (async () => {
      for (const f of this.flowsOf(after)) {
        const old = newestOf(before, f.id);
        if (old !== undefined && definitionHash(old) === definitionHash(f)) continue;
        if (this.d.clustered) await this.publish(f);
        if (old !== undefined) await this.apply(f, definitionHash(f));
      }
    })().catch((err: unknown) => this.d.log.error({ err: coerceError(err) }, "on-update after a reload failed"));
  }

  /** The definition a new trigger of `base` runs with: the cluster's published one where it differs. */
  definitionFor(base: Flow): Flow {
    const p = this.published.get(base.id);
    return p !== undefined && p.hash !== definitionHash(base) && p.flow.ver >= base.ver ? p.flow : base;
  }

  /** The definition new runs of a draining flow are of (they are held); undefined if it does not drain. */
  drainingFor(flow: string): string | undefined {
    return this.draining.get(flow);
  }

  /** A new run of a draining flow, its pend on disk and in the table: held until the old runs have ended. */
  hold(record: RunRecord): void {
    this.held.set(record.ref.run, record);
    this.d.publisher.run(this.d.table.wait(record.ref.run, DRAINING_REASON));
    if (!this.draining.has(record.ref.flow) && record.drainFor !== undefined) this.draining.set(record.ref.flow, record.drainFor);
    this.schedule();
  }

  /** Whether a pend is held here while its flow drains (not on the shared list). */
  holds(run: string): boolean {
    return this.held.has(run);
  }

  /** Takes a held pend out of the hold (a cancel): true if it was held here. */
  take(run: string): boolean {
    return this.held.delete(run);
  }

  private flowsOf(config: Config): Flow[] {
    const ids = new Set(config.flows.map((f) => f.id));
    return [...ids].flatMap((id) => newestOf(config, id) ?? []);
  }

  private async publish(f: Flow): Promise<void> {
    const p: Published = { hash: definitionHash(f), at: now(), host: this.d.host, flow: f };
    await this.d.state.setValue(publishedKey(f.id), JSON.stringify(p));
    await this.d.state.setValue(PUBLISH_MARK, `${p.hash} ${p.at} ${p.host}`);
    this.published.set(f.id, p);
    this.d.log.info({ flow: f.id, def: p.hash }, "published the flow's definition to the cluster");
  }

  /** The published definitions of this host's flows: a newer one than last seen is applied here. */
  private async look(): Promise<void> {
    // With the lease's ticks, the mark comes with each renewal (followValue): no read of its own.
    const renewed = this.d.ticks !== undefined ? this.d.state.valueAtHeartbeat(PUBLISH_MARK) : undefined;
    const mark = renewed !== undefined ? renewed.value : await this.d.state.getValue(PUBLISH_MARK);
    const last = this.lastFull;
    if (last !== undefined && mark !== undefined && mark === last.mark && performance.now() - last.at < FULL_LOOK_MS) return;
    const at = performance.now();
    for (const f of this.flowsOf(this.d.config())) {
      const p = parsePublished(await this.d.state.getValue(publishedKey(f.id)));
      if (p === undefined) continue;
      const seen = this.published.get(f.id);
      this.published.set(f.id, p);
      if (seen !== undefined && seen.hash !== p.hash) await this.apply(p.flow, p.hash);
    }
    this.lastFull = { mark, at };
  }

  /** A flow's definition is now `hash`: its on-update applies to this host's runs of other definitions. */
  private async apply(flow: Flow, hash: string): Promise<void> {
    const how = flow.onUpdate ?? "keep";
    if (how === "keep") return;
    if (how === "drain") {
      this.d.log.info({ flow: flow.id, def: hash }, "flow updated: new runs wait for the old ones (on-update: drain)");
      this.draining.set(flow.id, hash);
      this.schedule();
      return;
    }
    const reason = `flow updated to version ${flow.ver} (definition ${hash}) (on-update: abort)`;
    for (const e of [...this.d.table.all()]) {
      if (e.record.ref.flow !== flow.id || defOf(e.record) === hash) continue;
      try {
        if (e.state === "active") await e.executor.cancel(reason);
        else if (e.state === "pending" && !this.held.has(e.record.ref.run) && e.record.debounceUntil === undefined) await this.d.finisher.endPending(e.record.ref.run, "cancelled", reason);
      } catch (err) {
        this.d.log.error({ err: coerceError(err), run: e.record.ref.run }, "could not abort a run of the old definition");
      }
    }
  }

  /** The look and the drain check, every LOOK_EVERY_MS by a timer of its own — unless the lease's ticks drive them (start()). */
  private schedule(): void {
    if (this.stopped || this.timer !== undefined || this.d.ticks !== undefined) return;
    if (!this.d.clustered && this.draining.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.check();
    }, LOOK_EVERY_MS);
    this.timer.unref();
  }

  /** A tick of the lease's renewal: a check if LOOK_EVERY_MS has passed since the last (give or take a tenth). */
  private ticked(): void {
    if (!this.stopped && performance.now() - this.checkedAt >= LOOK_EVERY_MS * 0.9) this.check();
  }

  private check(): void {
    if (this.looking) return this.schedule();
    this.looking = true;
    this.checkedAt = performance.now();
    void (async () => {
      if (this.d.clustered) await this.look();
      await this.releaseDrained();
    })()
      .catch((err: unknown) => this.d.log.warn({ err: coerceError(err) }, "on-update check failed; retrying"))
      .finally(() => {
        this.looking = false;
        this.schedule();
      });
  }

  /** Draining flows with no run of another definition left: their held runs are queued. */
  private async releaseDrained(): Promise<void> {
    for (const [flow, hash] of [...this.draining]) {
      if (await this.oldRunsLeft(flow, hash)) continue;
      this.draining.delete(flow);
      this.d.log.info({ flow, def: hash }, "the old definition's runs have ended; queuing the held runs");
      for (const [run, record] of [...this.held]) {
        if (record.ref.flow !== flow) continue;
        this.held.delete(run);
        if (this.d.table.get(run)?.state !== "pending") continue;
        await this.d.state.addPend(pendOf(record, this.d.clustered));
      }
      this.d.released();
    }
  }

  private async oldRunsLeft(flow: string, hash: string): Promise<boolean> {
    for (const e of this.d.table.all()) {
      if (e.record.ref.flow === flow && e.state !== "archived" && !this.held.has(e.record.ref.run) && defOf(e.record) !== hash) return true;
    }
    if (!this.d.clustered) return false;
    for (const state of ["active", "pending"] as const) {
      for (const json of await this.d.state.listRuns({ flow, state, limit: 1000 })) {
        const s = parseRunSummary(json);
        if (s.def !== hash && !this.held.has(s.ref.run) && s.waiting !== DRAINING_REASON) return true;
      }
    }
    return false;
  }
}

function parsePublished(v: string | undefined): Published | undefined {
  if (v === undefined || v === "") return undefined;
  try {
    const x: unknown = JSON.parse(v);
    if (!isObj(x) || typeof x["hash"] !== "string" || typeof x["at"] !== "number" || typeof x["host"] !== "string") return undefined;
    // The flow is checked as a run's is (it becomes the snapshot of the runs adopted with it).
    const probe = parseRunRecord({ v: 1, ref: { flow: "x", ver: 1, run: "x", adoptedBy: "x" }, flow: x["flow"], trigger: { id: "x" }, adoptedAt: 0, attempt: 1 });
    return probe === undefined ? undefined : { hash: x["hash"], at: x["at"], host: x["host"], flow: probe.flow };
  } catch {
    return undefined;
  }
}
