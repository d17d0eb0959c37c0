// The dashboard: the cluster's hosts, every flow with its run counts and last result, and
// the most recent runs anywhere, kept current by the event stream.
import { seg } from "./api.js";
import { ago, badge, h, keepFocus, runBadge, runRank, section, shortId, table, throttle, took, waitingReason } from "./dom.js";

const RECENT = 25;

export function mountDash(app, _params, root) {
  const hostsBody = h("tbody", { id: "hosts" });
  const flowsBody = h("tbody", { id: "flows" });
  const runsBody = h("tbody", { id: "recent-runs" });
  const runs = new Map();
  let flows = [];
  let gone = false;

  root.append(
    h("h1", {}, "Dashboard"),
    h(
      "div",
      { class: "grid2" },
      section("Hosts", {}, table("Hosts of the cluster", ["Host", "Tags", "Slots", "State", "Last seen"], hostsBody)),
      section("Flows", {}, table("Flows and their runs", ["Flow", "Pending", "Active", "Archived", "Last result"], flowsBody)),
    ),
    section("Recent runs", {}, table("The most recent runs across the cluster", ["Run", "Flow", "State", "Host", "Started", "Took", "By"], runsBody)),
  );

  function renderHosts(hosts) {
    hostsBody.replaceChildren(
      ...hosts.map((x) =>
        h(
          "tr",
          { "data-host": x.name },
          h("th", { scope: "row" }, x.name),
          h("td", {}, x.tags.length ? x.tags.map((t) => h("span", { class: "tag" }, t)) : h("span", { class: "muted" }, "none")),
          h("td", {}, h("meter", { min: 0, max: Math.max(1, x.slots), value: x.running, "aria-label": `${x.running} of ${x.slots} slots used` }), ` ${x.running} of ${x.slots} used`),
          h("td", {}, badge(x.up ? "up" : "down")),
          h("td", {}, ago(x.lastSeen)),
        ),
      ),
    );
    if (hosts.length === 0) hostsBody.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No host has registered.")));
  }

  function renderFlows() {
    keepFocus(flowsBody, () => renderFlowRows());
  }

  function renderFlowRows() {
    flowsBody.replaceChildren(
      ...flows.map((f) =>
        h(
          "tr",
          { "data-flow": f.id, "data-key": f.id },
          h("th", { scope: "row" }, h("a", { href: `/app/flows/${seg(f.id)}` }, f.name || f.id), f.name && f.name !== f.id ? h("span", { class: "muted small" }, ` ${f.id}`) : null),
          h("td", { class: "num", "data-count": "pending" }, String(f.runs?.pending ?? 0)),
          h("td", { class: "num", "data-count": "active" }, String(f.runs?.active ?? 0)),
          h("td", { class: "num", "data-count": "archived" }, String(f.runs?.archived ?? 0)),
          h("td", {}, f.runs?.lastResult ? [badge(f.runs.lastResult), " ", ago(f.runs.lastEndedAt)] : h("span", { class: "muted" }, "no runs yet")),
        ),
      ),
    );
    if (flows.length === 0) flowsBody.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No flows are configured.")));
  }

  function renderRuns() {
    keepFocus(runsBody, () => renderRunRows());
  }

  function renderRunRows() {
    const list = [...runs.values()].sort((a, b) => (a.ref.run < b.ref.run ? 1 : -1)).slice(0, RECENT);
    for (const id of [...runs.keys()]) if (!list.some((r) => r.ref.run === id)) runs.delete(id);
    runsBody.replaceChildren(
      ...list.map((r) =>
        h(
          "tr",
          { "data-run": r.ref.run, "data-key": r.ref.run, "data-state": r.state },
          h("th", { scope: "row" }, h("a", { href: `/app/runs/${seg(r.ref.run)}`, class: "mono", title: r.ref.run }, shortId(r.ref.run))),
          h("td", {}, h("a", { href: `/app/flows/${seg(r.ref.flow)}` }, r.ref.flow)),
          h("td", {}, runBadge(r), r.state === "pending" && r.waiting ? h("div", { class: "muted small" }, waitingReason(r.waiting)) : null),
          h("td", {}, r.ref.execHost ?? h("span", { class: "muted" }, "—")),
          // A run cancelled while pending never started: no start time, not its adoption's.
          h("td", {}, r.startedAt ? ago(r.startedAt) : h("span", { class: "muted" }, "—")),
          h("td", {}, r.startedAt ? took(r.startedAt, r.endedAt) : h("span", { class: "muted" }, "—")),
          h("td", {}, r.trigger?.by ?? r.trigger?.id ?? ""),
        ),
      ),
    );
    if (list.length === 0) runsBody.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No runs yet.")));
  }

  async function loadHosts() {
    try {
      const r = await app.api.get("/hosts");
      if (!gone) renderHosts(r.hosts);
    } catch (e) {
      if (!gone && e.code !== "E_UNAUTHORIZED") hostsBody.replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "error" }, `Hosts could not be read: ${e.message}`)));
    }
  }

  async function loadFlows() {
    try {
      const r = await app.api.get("/flows");
      if (gone) return;
      flows = r.flows;
      renderFlows();
    } catch (e) {
      if (!gone && e.code !== "E_UNAUTHORIZED") app.flash(`Flows could not be read: ${e.message}`);
    }
  }

  async function loadRuns() {
    try {
      const r = await app.api.get(`/runs?limit=${RECENT}`);
      if (gone) return;
      for (const s of r.runs) {
        const known = runs.get(s.ref.run);
        if (known === undefined || runRank(known) <= runRank(s)) runs.set(s.ref.run, s);
      }
      renderRuns();
    } catch (e) {
      if (!gone && e.code !== "E_UNAUTHORIZED") app.flash(`Runs could not be read: ${e.message}`);
    }
  }

  const refreshFlows = throttle(() => void loadFlows(), 1000);
  const refreshHosts = throttle(() => void loadHosts(), 1000);
  const off = app.live.on((ev) => {
    if (ev.type === "resync") {
      runs.clear();
      void loadAll();
      return;
    }
    if (ev.type !== "run") return;
    runs.set(ev.summary.ref.run, ev.summary);
    renderRuns();
    refreshFlows();
    refreshHosts();
  });
  // Hosts come and go without a run changing (heartbeats, a host dying): look again now and then.
  const hostTimer = setInterval(() => void loadHosts(), 5000);

  async function loadAll() {
    await Promise.all([loadHosts(), loadFlows(), loadRuns()]);
    if (!gone) root.setAttribute("data-ready", "");
  }
  void loadAll();

  return () => {
    gone = true;
    off();
    clearInterval(hostTimer);
    refreshFlows.cancel();
    refreshHosts.cancel();
  };
}
