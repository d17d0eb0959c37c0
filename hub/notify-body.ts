/**
 * What a notification says: the run's summary as floe's JSON (`format: json`) or as a Slack
 * incoming-webhook message (`format: slack`), and its HMAC-SHA256 signature over the raw
 * body (`X-Floe-Signature: sha256=<hex>`, as GitHub signs its webhooks).
 */
import { createHmac } from "node:crypto";
import type { NotifyFormat } from "../flows/model.js";
import type { RunRecord } from "./run-record.js";
import { now } from "../store/clock.js";

/** The JSON body's shape, version 1. */
export interface RunEndedNotice {
  readonly v: 1;
  readonly event: "run.ended";
  readonly delivery: string;
  readonly flow: string;
  readonly ver: number;
  readonly name: string;
  readonly run: string;
  readonly attempt: number;
  readonly result: string;
  readonly reason: string;
  readonly host?: string;
  readonly adoptedAt: string;
  readonly startedAt?: string;
  readonly endedAt: string;
  readonly trigger: { readonly id: string; readonly by?: string };
  /** The run's page on the dashboard, when the host knows its address. */
  readonly url?: string;
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

export function runEndedNotice(r: RunRecord, delivery: string, pageUrl: string | undefined): RunEndedNotice {
  return {
    v: 1,
    event: "run.ended",
    delivery,
    flow: r.ref.flow,
    ver: r.ref.ver,
    name: r.flow.name,
    run: r.ref.run,
    attempt: r.attempt,
    result: r.result ?? "lost",
    reason: r.reason ?? "",
    ...(r.ref.execHost !== undefined ? { host: r.ref.execHost } : {}),
    adoptedAt: iso(r.adoptedAt) ?? "",
    ...(r.startedAt !== undefined ? { startedAt: iso(r.startedAt) ?? "" } : {}),
    endedAt: iso(r.endedAt ?? now()) ?? "",
    trigger: { id: r.trigger.id, ...(r.trigger.by !== undefined ? { by: r.trigger.by } : {}) },
    ...(pageUrl !== undefined ? { url: pageUrl } : {}),
  };
}

const COLORS: Readonly<Record<string, string>> = { good: "#2eb67d", bad: "#e01e5a", cancelled: "#979797", lost: "#ecb22e" };

/** The raw body sent for `format`. */
export function notificationBody(n: RunEndedNotice, format: NotifyFormat): string {
  if (format === "json") return JSON.stringify(n);
  const link = n.url !== undefined ? `<${n.url}|${n.flow} ${n.run.slice(-6)}>` : `${n.flow} ${n.run.slice(-6)}`;
  const text = `floe: run ${link} ended *${n.result}*${n.reason !== "" ? `: ${n.reason}` : ""}`;
  return JSON.stringify({
    text,
    attachments: [{ color: COLORS[n.result] ?? "#979797", fields: [{ title: "flow", value: `${n.name} (ver ${n.ver})`, short: true }, { title: "result", value: n.result, short: true }, ...(n.host !== undefined ? [{ title: "host", value: n.host, short: true }] : [])], ts: Math.floor(Date.parse(n.endedAt) / 1000) }],
  });
}

/** `sha256=<hex>` of the HMAC-SHA256 of `body` under `key`. */
export function signBody(body: string, key: string): string {
  return `sha256=${createHmac("sha256", key).update(body, "utf8").digest("hex")}`;
}
