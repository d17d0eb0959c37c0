// The notifications of a run's end (a flow's notify): each delivery this host made, its
// state and its tries, so a receiver that was down is seen here rather than guessed at.
import { ago, badge, h, section, table } from "./dom.js";

const STATE = { delivered: "good", failed: "bad", pending: "waiting" };

/** A card listing `run.notifications`, or null when the run has none (here). */
export function notificationsCard(run) {
  const list = run?.notifications ?? [];
  if (list.length === 0) return null;
  const rows = h(
    "tbody",
    {},
    list.map((d) => {
      const last = d.attempts[d.attempts.length - 1];
      const why = last ? (last.error ?? `HTTP ${last.status}`) : "not tried yet";
      return h(
        "tr",
        { "data-delivery": d.id },
        h("td", { class: "mono" }, d.url),
        h("td", {}, badge(STATE[d.state] ?? "waiting"), " ", d.state),
        h("td", {}, String(d.attempts.length)),
        h("td", {}, last ? `${why}, ${ago(last.at)}` : why, d.state === "pending" && d.nextAt ? ` · next try ${ago(d.nextAt)}` : ""),
        h("td", { class: "mono" }, d.id, d.signed ? " (signed)" : ""),
      );
    }),
  );
  return section("Notifications", { "data-notifications": "" }, table("Notifications of this run's end", ["Receiver", "State", "Tries", "Last try", "Delivery id"], rows));
}
