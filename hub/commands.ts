/**
 * What people ask of runs — input for a data node, cancel — on whichever host they ask:
 * done here for a run this host executes, sent over the cluster link to the host that
 * does, and for a pend adopted elsewhere done by whoever takes it off the shared list.
 */
import type { ClusterLink } from "./cluster-link.js";
import type { ClusterState } from "./cluster-state.js";
import { FloeError } from "./errors.js";
import type { Fencing } from "./fencing.js";
import type { Finisher } from "./finisher.js";
import { recordFromState } from "./pend.js";
import type { Publisher } from "./publisher.js";
import type { Queries } from "./queries.js";
import type { RunRecord } from "./run-record.js";
import { summarize, type RunTable } from "./run-table.js";
import type { NodeStatus, RunSummary } from "./types.js";
import { checked, isObj, nodeProblem, nodeStatusOf, summaryProblem } from "./wire-checks.js";
import { now } from "../store/clock.js";

/** A cancel of a run being activated waits for its executor, polling, up to this long. */
const CANCEL_POLL_MS = 20;
const CANCEL_WAIT_MS = 10_000;

export interface CommandsDeps {
  readonly table: RunTable;
  readonly state: ClusterState;
  readonly queries: Queries;
  readonly finisher: Finisher;
  readonly fencing: Fencing;
  readonly publisher: Publisher;
  /** Cluster mode: requests to other hosts. */
  readonly link?: ClusterLink;
  /** Takes a pend held back from the shared list (debounce.ts) out of its hold: true if it was. */
  unhold?(run: string): boolean;
}

export interface DataRequest {
  readonly run: string;
  readonly node: string;
  readonly values: unknown;
  readonly reject?: string;
  /** Who gave the input (a user name, "admin"). */
  readonly by?: string;
}

export interface CancelRequest {
  readonly run: string;
  readonly by: string;
}

/** A data request from another host, checked. */
export function parseDataRequest(x: unknown): DataRequest {
  if (!isObj(x) || typeof x["run"] !== "string" || typeof x["node"] !== "string" || (x["reject"] !== undefined && typeof x["reject"] !== "string") || (x["by"] !== undefined && typeof x["by"] !== "string")) {
    throw new FloeError("E_BAD_REQUEST", "a data request needs run and node (strings), values, and optional reject and by (strings)");
  }
  return { run: x["run"], node: x["node"], values: x["values"], ...(typeof x["reject"] === "string" ? { reject: x["reject"] } : {}), ...(typeof x["by"] === "string" ? { by: x["by"] } : {}) };
}

/** A cancel request from another host, checked. */
export function parseCancelRequest(x: unknown): CancelRequest {
  if (!isObj(x) || typeof x["run"] !== "string" || typeof x["by"] !== "string") throw new FloeError("E_BAD_REQUEST", "a cancel request needs run and by (strings)");
  return { run: x["run"], by: x["by"] };
}

export class Commands {
  constructor(private readonly d: CommandsDeps) {}

  /** Input for a data node of a run on any host of the cluster. */
  async submitData(run: string, node: string, values: unknown, reject?: string, by?: string): Promise<NodeStatus> {
    const { table, queries, link } = this.d;
    if (table.get(run)?.state !== "active" && link !== undefined) {
      const host = await queries.remoteHost(run);
      if (host !== undefined) return nodeStatusOf(await link.ask(host, "data", { run, node, values, ...(reject !== undefined ? { reject } : {}), ...(by !== undefined ? { by } : {}) }), `host ${host}'s answer`);
      if (table.get(run) === undefined) {
        // Another host's run that is not active: say why, as its own host would.
        const sum = await queries.indexedSummary(run);
        if (sum?.state === "archived") throw new FloeError("E_RUN_ENDED", `run "${run}" has ended`);
        if (sum !== undefined) throw new FloeError("E_DATA_NOT_ENABLED", `run "${run}" is ${sum.state}; its data nodes are not open yet`);
      }
    }
    return this.postData(run, node, values, reject, by);
  }

  /** Input for a data node of a run this host executes. */
  postData(run: string, node: string, values: unknown, reject?: string, by?: string): NodeStatus {
    const e = this.d.queries.entry(run);
    this.refuseIfStoodDown(run);
    if (e.state !== "active") {
      if (e.state === "archived") throw new FloeError("E_RUN_ENDED", `run "${run}" has ended`);
      throw new FloeError("E_DATA_NOT_ENABLED", `run "${run}" is ${summarize(e).state}; its data nodes are not open yet`);
    }
    return e.executor.postData(node, values, reject, by);
  }

  async cancel(run: string, by: string): Promise<RunSummary> {
    const { table, queries, link } = this.d;
    if (table.get(run)?.state !== "active" && link !== undefined) {
      const host = await queries.remoteHost(run);
      if (host !== undefined) return this.askCancel(link, host, run, by);
      if (table.get(run) === undefined) return this.cancelRemotePend(link, run, by);
    }
    const reason = `cancelled by ${by}`;
    for (let waited = 0; ; waited += CANCEL_POLL_MS) {
      const e = queries.entry(run);
      this.refuseIfStoodDown(run);
      if (e.state === "archived") throw new FloeError("E_RUN_ENDED", `run "${run}" has already ended (${e.record.result ?? "?"})`);
      if (e.state === "pending") {
        // Whoever takes it off the shared list ends it; a dispatcher that claimed it first wins.
        // A debounced trigger still in its window is not on the list yet: ending it is enough.
        if (this.d.unhold?.(run) === true || (await this.d.state.removePend(run))) {
          await this.d.finisher.finish(run, "cancelled", reason);
          return summarize(table.get(run) ?? e);
        }
      } else if (e.state === "active") {
        await e.executor.cancel(reason);
        await this.d.finisher.settle();
        return summarize(table.get(run) ?? e);
      } else if (e.why === "stopping") throw new FloeError("E_STOPPING", `run "${run}" waits for this host's next start`);
      // Claimed a moment ago, or being recovered: its executor comes in a moment; cancel that.
      if (waited > CANCEL_WAIT_MS) throw new FloeError("E_UNAVAILABLE", `run "${run}" is still being started here; try again`);
      await new Promise((r) => setTimeout(r, CANCEL_POLL_MS));
    }
  }

  private async askCancel(link: ClusterLink, host: string, run: string, by: string): Promise<RunSummary> {
    return checked<RunSummary>(await link.ask(host, "cancel", { run, by }), summaryProblem, `host ${host}'s answer`);
  }

  /** A pend adopted by another host: whoever removes it from the shared list ends it. */
  private async cancelRemotePend(link: ClusterLink, run: string, by: string): Promise<RunSummary> {
    const sum = await this.d.queries.indexedSummary(run);
    if (sum === undefined) throw new FloeError("E_RUN_NOT_FOUND", `no run "${run}"`);
    if (sum.state === "archived") throw new FloeError("E_RUN_ENDED", `run "${run}" has already ended (${sum.result ?? "?"})`);
    if (!(await this.d.state.removePend(run))) {
      // Claimed by a host in the meantime: cancel it there.
      const host = await this.d.queries.remoteHost(run);
      if (host !== undefined) return this.askCancel(link, host, run, by);
      // Held back from the shared list by the host that adopted it (debounce, drain): that host ends it.
      if (sum.state === "pending" && sum.ref.adoptedBy !== undefined) return this.askCancel(link, sum.ref.adoptedBy, run, by);
      throw new FloeError("E_RUN_ENDED", `run "${run}" is no longer pending`);
    }
    const rec = recordFromState(await this.d.state.getRecord(run));
    if (rec === undefined) throw new FloeError("E_RUN_NOT_FOUND", `run "${run}" has no record`);
    const ended: RunRecord = { ...rec, result: "cancelled", reason: `cancelled by ${by}`, endedAt: now() };
    const summary = summarize({ state: "archived", record: ended });
    this.d.publisher.summary(summary);
    return summary;
  }

  private refuseIfStoodDown(run: string): void {
    if (this.d.fencing.isStoodDown(run)) throw new FloeError("E_UNAVAILABLE", `run "${run}" waits on a host that lost touch with the cluster state; try again when it is back`);
  }
}
