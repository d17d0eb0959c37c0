/**
 * Adoption: a trigger becomes a run. The flow and trigger are found, the values checked
 * against the trigger's form, the flow's queue limit applied, and the pend written — on
 * disk, then in the cluster's pending list — before the caller is answered (DESIGN §4.2). A
 * run that a dispatch pass would give to this host at once is taken in that same step.
 */
import type { Logger } from "pino";
import { resolveFlow } from "../flows/flow-file.js";
import { readForm } from "../flows/forms.js";
import type { Config, Flow, TriggerNode } from "../flows/model.js";
import type { RunFiles } from "../store/run-files.js";
import type { Claimed, ClusterState } from "./cluster-state.js";
import { checkValues, missingFields, withDefaults } from "./data-input.js";
import { Debounce } from "./debounce.js";
import { coerceError, FloeError } from "./errors.js";
import type { Finisher } from "./finisher.js";
import { definitionHash, type OnUpdate } from "./on-update.js";
import { pendOf } from "./pend.js";
import { indexWriteOf } from "./index-mirror.js";
import type { Publisher } from "./publisher.js";
import { makeRef, type RunRecord } from "./run-record.js";
import type { RunFolders } from "./run-folders.js";
import { summarize, type RunTable } from "./run-table.js";
import type { RunSummary } from "./types.js";
import { now } from "../store/clock.js";

export interface TriggerRequest {
  readonly flow: string;
  readonly ver?: number;
  /** Trigger id; defaults to the flow's first data trigger (or first trigger). */
  readonly trigger?: string;
  readonly values?: unknown;
  /** Extra opts from the trigger source (webhook url/branch/hash, timer tick…). */
  readonly opts?: Readonly<Record<string, unknown>>;
  /** Allow any trigger type and missing form values (used by `floe run` to start any flow). */
  readonly anyTrigger?: boolean;
  /** Who asked (a user name, "timer", "webhook"…), recorded on the run. */
  readonly by?: string;
  /** Only a data trigger may be named (people starting runs through the API). */
  readonly dataOnly?: boolean;
  /** The run's id, chosen by the caller (a child run's, journalled by its parent before adoption). @defaultValue a new one */
  readonly run?: string;
  /** A child run: the run that starts it (child-runs.ts). */
  readonly parent?: RunRecord["parent"];
  /** A child run: the artifacts its parent hands over (its trigger node's). */
  readonly inputs?: RunRecord["inputs"];
}

/** Trigger opts that never reach a task: secrets and form definitions. */
const PRIVATE_OPTS = new Set(["secret", "form"]);

export interface AdoptionDeps {
  readonly config: () => Config;
  /** Folder of the config file: relative flow-files are read from there. */
  readonly configDir: string;
  readonly host: string;
  readonly clustered: boolean;
  readonly files: RunFiles;
  readonly folders: RunFolders;
  readonly state: ClusterState;
  readonly table: RunTable;
  readonly publisher: Publisher;
  readonly finisher: Finisher;
  readonly newRunId: () => string;
  readonly log: Logger;
  /** `queue-strategy: debounce`: holds a new pend back for its window. */
  readonly debounce: Debounce;
  /** `on-update`: the definition new runs use, and holding them while their flow drains. */
  readonly onUpdate: OnUpdate;
  /** Throws when the hub takes no new runs now. */
  assertRunning(): void;
  /** A new pend: the dispatcher looks. */
  adopted(): void;
  /** Whether this host may take a run as it adopts it (Dispatcher.mayTakeAtAdoption). */
  mayTake(): boolean;
  /** A take in flight, waited for by the dispatcher's stop (Dispatcher.taking). */
  taking<T>(add: Promise<T>): Promise<T>;
  /** A run this host took as it adopted it: activated (Dispatcher.took). */
  took(c: Claimed): void;
}

export class Adoption {
  constructor(private readonly d: AdoptionDeps) {}

  findFlow(id: string, ver?: number): Flow {
    const candidates = this.d.config().flows.filter((f) => f.id === id && (ver === undefined || f.ver === ver));
    const flow = candidates.reduce<Flow | undefined>((best, f) => (best === undefined || f.ver > best.ver ? f : best), undefined);
    if (flow === undefined) throw new FloeError("E_FLOW_NOT_FOUND", ver === undefined ? `no flow "${id}"` : `no flow "${id}" version ${ver}`);
    return flow;
  }

  /** Adopts a trigger into a run: the pend is on disk and in the cluster before this returns. */
  async trigger(req: TriggerRequest): Promise<RunSummary> {
    this.d.assertRunning();
    // A run id chosen by the caller (a child run's) that this host adopted already: that run, not a second one.
    const had = req.run === undefined ? undefined : this.d.table.get(req.run);
    if (had !== undefined) return summarize(had);
    // The cluster's newest definition of the flow, where a newer reload elsewhere published one (on-update.ts).
    const base = this.d.onUpdate.definitionFor(this.findFlow(req.flow, req.ver));
    const trig = this.pickTrigger(base, req);
    const form = trig === undefined ? undefined : readForm(trig.opts).form;
    const values = withDefaults(form, checkValues(form, req.values));
    if (form !== undefined && !req.anyTrigger) {
      const missing = missingFields(form, values);
      if (missing.length > 0) throw new FloeError("E_FORM_INVALID", `missing values for ${missing.join(", ")}`, { details: { missing } });
    }
    const gitKey = this.d.config().common.gitKey;
    let flow: Flow;
    try {
      flow = await resolveFlow(base, { baseDir: this.d.configDir, ...(gitKey ? { gitKey } : {}) });
    } catch (e) {
      throw new FloeError("E_FLOW_FILE", coerceError(e).message, { cause: e });
    }
    const triggerOpts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(trig?.opts ?? {})) if (!PRIVATE_OPTS.has(k)) triggerOpts[k] = v;
    const run = req.run ?? this.d.newRunId();
    const adoptedAt = now();
    const record: RunRecord = {
      v: 1,
      ref: makeRef(flow.id, flow.ver, run, this.d.host),
      flow,
      trigger: { id: trig?.id ?? "manual", type: trig?.type ?? "manual", values: { ...triggerOpts, ...(req.opts ?? {}), ...values }, ...(req.by !== undefined ? { by: req.by } : {}) },
      adoptedAt,
      attempt: 1,
      def: definitionHash(base),
      ...(req.parent !== undefined ? { parent: req.parent } : {}),
      ...(req.inputs !== undefined && req.inputs.length > 0 ? { inputs: req.inputs } : {}),
      ...(Debounce.applies({ flow }) ? { debounceUntil: adoptedAt + (flow.debounceMs ?? 0) } : {}),
    };
    const drain = this.d.onUpdate.drainingFor(flow.id);
    if (drain !== undefined && drain === record.def) return this.adopt({ ...record, drainFor: drain });
    return this.adopt(record);
  }

  /**
   * Writes a new run's pend — on disk, then (unless debounced: debounce.ts) on the cluster's
   * pending list — and answers with it. A trigger's run and a re-run (rerun.ts) alike.
   */
  async adopt(record: RunRecord): Promise<RunSummary> {
    const { flow } = record;
    const run = record.ref.run;
    // A re-run is queued like any trigger: the flow's queue-limit applies to it too.
    await this.applyQueueLimit(flow);
    await this.d.folders.snapshotFlow(flow);
    await this.d.files.writeRunJson("pending", record.ref, record);
    if (record.drainFor !== undefined) {
      const entry = this.d.table.adopt(record);
      this.d.onUpdate.hold(record);
      this.d.log.info({ run, flow: flow.id }, "run held while the runs of the flow's previous definition drain");
      return summarize(this.d.table.get(run) ?? entry);
    }
    if (record.debounceUntil !== undefined) {
      const entry = this.d.table.adopt(record);
      this.d.publisher.run(entry);
      await this.d.debounce.hold(record);
      this.d.log.info({ run, flow: flow.id, until: record.debounceUntil }, "trigger held for its debounce window");
      return summarize(this.d.table.get(run) ?? entry);
    }
    // Cluster: the run's entry in the run index goes with its pend, in the same round trip
    // (and is there before the 201, for another host asked about it right after).
    const indexed = this.d.clustered ? indexWriteOf({ v: 1, type: "run", summary: this.d.publisher.summaryOf({ state: "pending", record }) }) : undefined;
    const pend = pendOf(record, this.d.clustered);
    const index = indexed !== undefined ? [indexed.w] : [];
    let taken: Claimed | undefined;
    try {
      // One step: the pend, with the record another host needs to activate or requeue it —
      // or the run taken by this host, where a pass would give it to this host now.
      if (this.d.mayTake()) taken = await this.d.taking(this.d.state.addPendTaking(pend, index));
      else await this.d.state.addPend(pend, "new", index);
    } catch (e) {
      // The cluster never heard of it: no run, and the caller is told to try again.
      await this.d.files.remove("pending", record.ref).catch(() => undefined);
      throw new FloeError("E_UNAVAILABLE", `the cluster state can not be reached; the run was not started: ${coerceError(e).message}`, { cause: e });
    }
    const entry = this.d.table.adopt(record);
    this.d.publisher.run(entry, { indexed: indexed !== undefined });
    this.d.log.info({ run, flow: flow.id, ver: flow.ver, trigger: record.trigger.id }, "run adopted");
    if (taken !== undefined) this.d.took(taken);
    else this.d.adopted();
    return summarize(entry);
  }

  private pickTrigger(flow: Flow, req: TriggerRequest): TriggerNode | undefined {
    if (req.trigger !== undefined) {
      const t = flow.triggers.find((x) => x.id === req.trigger);
      if (t === undefined) throw new FloeError("E_TRIGGER_NOT_FOUND", `flow "${flow.id}" has no trigger "${req.trigger}" (triggers: ${flow.triggers.map((x) => x.id).join(", ") || "none"})`);
      if (req.dataOnly && t.type !== "data") throw new FloeError("E_TRIGGER_NOT_FOUND", `trigger "${t.id}" of flow "${flow.id}" is a ${t.type} trigger; only data triggers start runs from a form`);
      return t;
    }
    const data = flow.triggers.find((x) => x.type === "data");
    if (data !== undefined) return data;
    if (req.anyTrigger) return flow.triggers[0];
    throw new FloeError("E_TRIGGER_NOT_FOUND", `flow "${flow.id}" has no data trigger to start it with`);
  }

  /** `queue-limit`: refuse the trigger (append), or cancel the oldest pends to make room (replace). */
  private async applyQueueLimit(flow: Flow): Promise<void> {
    if (flow.queueLimit === undefined) return;
    const pending = this.d.table.ofVersion(flow.id, flow.ver, "pending");
    if (pending.length < flow.queueLimit) return;
    if (flow.queueStrategy === "append" || pending.length === 0) {
      throw new FloeError("E_QUEUE_FULL", `flow "${flow.id}" already has ${pending.length} pending run(s), its queue-limit`);
    }
    for (const old of pending.slice(0, pending.length - flow.queueLimit + 1)) {
      await this.d.finisher.endPending(old.record.ref.run, "cancelled", "replaced by a newer trigger (queue-strategy: replace)");
    }
  }
}
