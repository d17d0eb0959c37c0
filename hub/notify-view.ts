/**
 * A run's notifications as its detail shows them, on any host of a cluster: they are kept
 * by the host that sent them (the one that ended the run), so a host that sent none asks
 * the run's executing host over the cluster link (the `notifications` request).
 */
import type { Logger } from "pino";
import type { ClusterLink } from "./cluster-link.js";
import { coerceError } from "./errors.js";
import { publicDelivery, type Notifier } from "./notifier.js";

/** The deliveries of run `run` (its flow has `count` notify entries; `execHost` ran it). */
export type NotificationsView = (run: string, count: number, execHost: string | undefined) => Promise<readonly Record<string, unknown>[]>;

interface Ask {
  readonly run: string;
  readonly count: number;
}

function isAsk(x: unknown): x is Ask {
  return x !== null && typeof x === "object" && typeof (x as Record<string, unknown>)["run"] === "string" && Number.isInteger((x as Record<string, unknown>)["count"]) && ((x as Record<string, unknown>)["count"] as number) <= 100;
}

export function notificationsView(notifier: Pick<Notifier, "forRun">, host: string, log: Logger, link?: ClusterLink): NotificationsView {
  const local = async (run: string, count: number) => (await notifier.forRun(run, count)).map(publicDelivery);
  link?.serve("notifications", async (p) => (isAsk(p) ? local(p.run, p.count) : []));
  return async (run, count, execHost) => {
    const mine = await local(run, count);
    if (mine.length > 0 || link === undefined || execHost === undefined || execHost === host) return mine;
    try {
      const theirs = await link.ask(execHost, "notifications", { run, count });
      return Array.isArray(theirs) ? theirs.filter((x): x is Record<string, unknown> => x !== null && typeof x === "object") : [];
    } catch (e) {
      // The sending host is away: the run's detail is still worth showing.
      log.debug({ err: coerceError(e), run, host: execHost }, "could not ask a run's host for its notifications");
      return [];
    }
  };
}
