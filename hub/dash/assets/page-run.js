// A run: its RunRef, state, host and run attempt; its graph coloured live by node state; every
// node's times, exit code and tries (within the run's current attempt); open data forms to
// fill or reject; a node's output tailing live, one run attempt at a time; cancel and re-run
// for those whose role allows them; pause and resume, retry failed, and "re-run from here" on
// the selected node (run control: hub/pause.ts, hub/rerun.ts).
import { seg } from "./api.js";
import { ago, badge, facts, fill, h, keepFocus, runBadge, runRank, section, table, took, waitingReason } from "./dom.js";
import { buildForm } from "./form.js";
import { drawGraph } from "./graph.js";
import { emitted, nodePanel, nodeSub, shownState } from "./node-panel.js";
import { notificationsCard } from "./notify-panel.js";

const LEGEND = ["waiting", "running", "good", "bad", "skipped", "cancelled"];

/** A graph from the run's own nodes, when the flow version it ran is no longer configured. */
function graphFromNodes(nodes) {
  const triggers = nodes.filter((n) => n.class === "trigger").map((n) => n.id);
  const rest = nodes.filter((n) => n.class !== "trigger").map((n) => n.id);
  return { nodes: nodes.map((n) => ({ ...n, level: n.class === "trigger" ? 0 : 1 })), edges: [], levels: [triggers, ...rest.map((id) => [id])] };
}

export function mountRun(app, [runId], root, query) {
  let gone = false;
  let loading = false;
  let run;
  let flowDef;
  let graph;
  const nodes = new Map();
  const queue = [];
  const forms = new Map();
  const panel = nodePanel(app, runId);
  const head = h("div", { class: "run-head" });
  const actions = h("div", { class: "actions run-actions" });
  const factsBox = h("div", {});
  const notifyBox = h("div", {});
  const inputs = h("section", { class: "card inputs", "aria-labelledby": "inputs-title", hidden: true }, h("h2", { id: "inputs-title" }, "Waiting for input"));
  const nodeRows = h("tbody", { id: "node-rows" });
  const graphBox = h("div", { class: "graph-wrap" });
  const message = h("p", { class: "error", role: "alert" });
  let confirming = false;

  panel.onClose = () => {
    graph?.select(undefined);
    history.replaceState(null, "", `/app/runs/${seg(runId)}`);
    renderNodes();
    if (run) renderActions();
  };

  function select(id, focus) {
    const n = nodes.get(id);
    if (!n || !run) return;
    panel.show(n, stateOf(n));
    graph?.select(id);
    history.replaceState(null, "", `/app/runs/${seg(runId)}?node=${seg(id)}`);
    renderNodes();
    renderActions();
    if (focus) panel.focus();
  }

  function renderHead() {
    const r = run;
    fill(head, 
      h("h1", {}, "Run ", h("span", { class: "mono" }, r.ref.run), " ", runBadge(r)),
      r.reason ? h("p", { class: "why", "data-reason": "" }, r.reason) : null,
      r.state === "pending" ? h("p", { class: "why", "data-waiting": "" }, r.waiting ? waitingReason(r.waiting) : "waiting for the dispatcher") : null,
      r.paused && r.state !== "archived" ? h("p", { class: "why", "data-paused": "" }, `Paused by ${r.pausedBy ?? "?"}: no new task starts until it is resumed (its running tasks finish; its timeout keeps counting).`) : null,
    );
    const runLink = (l) => h("span", {}, h("a", { href: `/app/runs/${seg(l.run)}`, "data-run-link": l.run }, l.run), l.from ? ` from ${l.from}` : " from the start");
    const ref = `${r.ref.flow}/${r.ref.ver}/${r.ref.run} adopted by ${r.ref.adoptedBy}${r.ref.execHost ? `, on ${r.ref.execHost}` : ""}`;
    const tv = Object.entries(r.trigger?.values ?? {}).filter(([, v]) => v === null || typeof v !== "object");
    const rows = [
      ["flow", h("a", { href: `/app/flows/${seg(r.ref.flow)}` }, run.name || r.ref.flow), ` (ver ${r.ref.ver})`],
      ["host", r.ref.execHost ?? h("span", { class: "muted" }, "not yet dispatched")],
      ["run attempt", h("span", { "data-run-attempt": r.attempt }, r.attempt > 1 ? `${r.attempt} (requeued after its host was lost)` : String(r.attempt))],
      ["trigger", `${r.trigger?.id ?? "?"} (${r.trigger?.type ?? "?"})${r.trigger?.by ? ` by ${r.trigger.by}` : ""}`],
      tv.length ? ["values", tv.map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`))] : null,
      ["adopted", ago(r.adoptedAt)],
      r.startedAt ? ["started", ago(r.startedAt)] : null,
      r.endedAt ? ["ended", ago(r.endedAt)] : null,
      r.startedAt ? [r.endedAt ? "took" : "running for", took(r.startedAt, r.endedAt)] : null,
      r.rerunOf ? ["re-run of", h("span", { "data-rerun-of": "" }, runLink(r.rerunOf))] : null,
      r.reruns?.length ? ["re-runs", h("span", { "data-reruns": "" }, r.reruns.map((l, i) => [i ? ", " : "", runLink(l)]))] : null,
      // A child run (a type: flow task started it): the way back to its parent.
      r.parent ? ["child run of", h("span", { "data-parent": "" }, h("a", { href: `/app/runs/${seg(r.parent.run)}?node=${seg(r.parent.node)}`, "data-run-link": r.parent.run }, r.parent.run), ` (task ${r.parent.node}${r.parent.instance !== undefined ? `, instance ${r.parent.instance}` : ""})`)] : null,
      ["RunRef", h("code", { class: "wrap", "data-runref": "" }, ref)],
    ].filter(Boolean);
    fill(factsBox, facts(rows));
    fill(notifyBox, notificationsCard(r));
    panel.setAttempts(r.attempt);
    renderActions();
  }

  let actionsKey;

  function renderActions(force) {
    // Rebuilt only when the offer changes, so a focused button is not swept away by an update.
    const rerunnable = flowDef?.triggers.find((t) => t.id === run.trigger?.id)?.type === "data";
    const from = rerunFrom();
    const key = `${run.state}|${confirming}|${rerunnable}|${run.paused === true}|${from ?? ""}|${failedNode() ?? ""}`;
    if (key === actionsKey && !force) return;
    actionsKey = key;
    actions.replaceChildren();
    if (!app.can("operator")) return;
    if (run.state !== "archived") {
      if (!confirming) actions.append(h("button", { type: "button", class: "danger", id: "cancel-run", onclick: () => ((confirming = true), renderActions(), actions.querySelector("#cancel-yes")?.focus()) }, "Cancel run"));
      else {
        actions.append(
          h("span", {}, "Cancel this run and kill its tasks?"),
          h("button", { type: "button", class: "danger", id: "cancel-yes", onclick: (e) => void cancel(e.currentTarget) }, "Yes, cancel it"),
          h("button", { type: "button", onclick: () => ((confirming = false), renderActions(), actions.querySelector("#cancel-run")?.focus()) }, "No, keep it running"),
        );
      }
    }
    if (run.state === "active" && !confirming) {
      actions.append(run.paused
        ? h("button", { type: "button", id: "resume-run", onclick: (e) => void control(e.currentTarget, "resume") }, "Resume")
        : h("button", { type: "button", id: "pause-run", onclick: (e) => void control(e.currentTarget, "pause") }, "Pause"));
    }
    const trig = flowDef?.triggers.find((t) => t.id === run.trigger?.id);
    if (trig?.type === "data") actions.append(h("button", { type: "button", id: "rerun", onclick: (e) => void rerun(e.currentTarget, trig) }, "Re-run"));
    if (run.state === "archived") {
      if (failedNode() !== undefined) actions.append(h("button", { type: "button", id: "retry-failed", title: `re-run from ${failedNode()}, the first node that failed`, onclick: (e) => void rerunOf(e.currentTarget, { failed: true }) }, "Retry failed"));
      if (from !== undefined) actions.append(h("button", { type: "button", id: "rerun-from", "data-from": from, onclick: (e) => void rerunOf(e.currentTarget, { from }) }, `Re-run from here (${nodes.get(from)?.name ?? from})`));
    }
    actions.append(message);
  }

  /** The selected node, when an ended run may be re-run from it: a task or merge the run reached. */
  function rerunFrom() {
    const n = panel.nodeId !== undefined ? nodes.get(panel.nodeId) : undefined;
    if (!n || !run || run.state !== "archived" || n.class === "trigger") return undefined;
    return n.startedAt !== undefined || (n.state !== "waiting" && n.state !== "skipped") ? n.id : undefined;
  }

  /** The first task that ended bad (or was cut short): where "retry failed" starts. */
  function failedNode() {
    if (!run || run.state !== "archived" || run.result === "good") return undefined;
    const bad = [...nodes.values()].filter((n) => n.class === "task" && (n.state === "bad" || n.state === "cancelled") && n.endedAt !== undefined);
    bad.sort((a, b) => a.endedAt - b.endedAt);
    return bad[0]?.id;
  }

  async function control(button, verb) {
    button.disabled = true;
    message.textContent = "";
    try {
      const r = await app.api.post(`/runs/${seg(runId)}/${verb}`, {});
      applyRun(r.run);
    } catch (e) {
      message.textContent = e.message;
      button.disabled = false;
    }
  }

  async function rerunOf(button, body) {
    button.disabled = true;
    message.textContent = "";
    try {
      const r = await app.api.post(`/runs/${seg(runId)}/rerun`, body);
      app.navigate(`/app/runs/${seg(r.run.ref.run)}`);
    } catch (e) {
      message.textContent = e.message;
      button.disabled = false;
    }
  }

  async function cancel(button) {
    button.disabled = true;
    message.textContent = "";
    try {
      const r = await app.api.post(`/runs/${seg(runId)}/cancel`, {});
      confirming = false;
      applyRun(r.run);
    } catch (e) {
      message.textContent = e.message;
      button.disabled = false;
    }
  }

  async function rerun(button, trig) {
    button.disabled = true;
    message.textContent = "";
    // The run's values hold the trigger's opts too: send back only its form's fields.
    const ids = new Set((trig.form?.fields ?? []).map((f) => f.id));
    const values = Object.fromEntries(Object.entries(run.trigger.values ?? {}).filter(([k]) => ids.has(k)));
    try {
      const r = await app.api.post(`/flows/${seg(run.ref.flow)}/runs`, { trigger: trig.id, ...(flowDef.ver === run.ref.ver ? { ver: run.ref.ver } : {}), values });
      app.navigate(`/app/runs/${seg(r.run.ref.run)}`);
    } catch (e) {
      message.textContent = e.message;
      button.disabled = false;
    }
  }

  function renderNodes() {
    keepFocus(nodeRows, () => renderNodeRows());
  }

  function renderNodeRows() {
    nodeRows.replaceChildren(
      ...[...nodes.values()].map((n) => {
        const st = stateOf(n);
        return h(
          "tr",
          { "data-node-row": n.id, "data-key": n.id, "data-state": st, class: panel.nodeId === n.id ? "sel" : "" },
          h("th", { scope: "row" }, h("button", { type: "button", class: "link", "aria-pressed": String(panel.nodeId === n.id), onclick: () => select(n.id, true) }, n.name)),
          // A flow task links to the child run it started.
          h("td", {}, n.class === "task" ? n.type : n.class, n.child ? [" → ", h("a", { href: `/app/runs/${seg(n.child)}`, "data-child-link": n.child, title: `child run ${n.child}` }, `run …${n.child.slice(-6)}`)] : null),
          h("td", {}, badge(n.enabled ? "input" : st)),
          h("td", { class: "num" }, n.class === "task" && n.type !== "data" && n.type !== "end" ? String(n.attempts) : ""),
          h("td", { class: "num" }, n.exitCode !== undefined ? String(n.exitCode) : ""),
          // A data node waiting for its form has taken nothing yet: it waits on a person, not a task.
          h("td", {}, n.startedAt && !n.enabled ? took(n.startedAt, n.endedAt) : ""),
        );
      }),
    );
  }

  function formTitle(n) {
    const title = flowDef?.tasks?.find((x) => x.id === n.id)?.form?.title;
    return title ? `${n.name}: ${title}` : n.name;
  }

  function renderInputs() {
    const open = [...nodes.values()].filter((n) => n.enabled && n.class === "task" && n.type === "data");
    for (const [id, f] of forms) {
      if (!open.some((n) => n.id === id)) {
        f.el.remove();
        forms.delete(id);
      }
    }
    for (const n of open) {
      // Rebuilding a form would throw away what someone is typing: only when its fields change.
      const key = JSON.stringify(n.fields ?? []);
      if (forms.get(n.id)?.key === key) continue;
      forms.get(n.id)?.el.remove();
      const el = app.can("operator")
        ? buildForm({
            title: formTitle(n),
            fields: n.fields ?? [],
            values: n.values,
            submitLabel: "Send",
            attrs: { "data-node-form": n.id },
            onSubmit: (values) => app.api.post(`/runs/${seg(runId)}/nodes/${seg(n.id)}/data`, { values }).then((r) => applyNode(r.node)),
            onReject: (reason) => app.api.post(`/runs/${seg(runId)}/nodes/${seg(n.id)}/data`, { reject: reason || "rejected in the dashboard" }).then((r) => applyNode(r.node)),
          })
        : h("p", { "data-node-form": n.id }, h("strong", {}, n.name), " waits for an operator to fill its form.");
      forms.set(n.id, { key, el });
      inputs.append(el);
    }
    inputs.hidden = open.length === 0;
  }

  /** The state a node is shown in (see shownState); end nodes look at the edges into them. */
  function stateOf(n) {
    const edges = n.class === "task" && n.type === "end" ? (flowDef?.graph.edges ?? []).filter((e) => e.to === n.id).map((e) => {
      const src = nodes.get(e.from);
      return { to: e.to, fired: src !== undefined && emitted(src, shownState(src, run, [])).includes(e.tag) };
    }) : [];
    return shownState(n, run, edges);
  }

  function paint(n) {
    const st = stateOf(n);
    graph?.setStatus(n.id, { state: st, sub: nodeSub(n, st), tags: emitted(n, st), needsInput: n.enabled });
  }

  function paintAll() {
    for (const n of nodes.values()) paint(n);
    renderNodes();
    if (panel.nodeId !== undefined) {
      const n = nodes.get(panel.nodeId);
      if (n) panel.show(n, stateOf(n));
    }
  }

  function applyNode(n) {
    nodes.set(n.id, n);
    paint(n);
    renderNodes();
    renderInputs();
    if (panel.nodeId === n.id) panel.show(n, stateOf(n));
  }

  function applyRun(s) {
    if (runRank(run) > runRank(s)) return;
    // A requeued run starts its flow afresh: its nodes are read again, not kept from the attempt before.
    if (s.attempt > run.attempt) return void load();
    const ended = run.state !== "archived" && s.state === "archived";
    // A summary leaves out what is not so (paused): a resumed run's summary has no paused field.
    const { paused: _p, pausedBy: _b, pausedAt: _a, ...kept } = run;
    run = { ...kept, ...(s.reruns === undefined && run.reruns ? { reruns: run.reruns } : {}), ...s };
    renderHead();
    // Once a run ends, nodes it never reached are shown as skipped, and its end node as reached.
    if (ended) paintAll();
    // Its notifications are made as it ends: read them a moment later.
    if (ended) setTimeout(() => void app.api.get(`/runs/${seg(runId)}`).then((d) => { if (!gone && d.notifications) { run = { ...run, notifications: d.notifications }; renderHead(); } }).catch(() => undefined), 1500);
  }

  async function load() {
    loading = true;
    try {
      const detail = await app.api.get(`/runs/${seg(runId)}`);
      if (gone) return;
      run = detail;
      document.title = `Run ${runId.slice(-8)} · ${detail.name} · floe`;
      if (flowDef === undefined) {
        const f = await app.api.get(`/flows/${seg(detail.ref.flow)}?ver=${detail.ref.ver}`).catch(() => undefined);
        if (gone) return;
        flowDef = f?.flow;
        graph = drawGraph(flowDef?.graph ?? graphFromNodes(detail.nodes), { onSelect: (id) => select(id, true), label: `Graph of run ${runId}` });
        graphBox.replaceChildren(graph.el);
      }
      nodes.clear();
      for (const n of detail.nodes) nodes.set(n.id, n);
      renderHead();
      paintAll();
      renderInputs();
      loading = false;
      for (const ev of queue.splice(0)) handle(ev);
      const want = panel.nodeId ?? query.get("node");
      if (want && nodes.has(want)) select(want, false);
      root.setAttribute("data-ready", "");
    } catch (e) {
      loading = false;
      if (gone || e.code === "E_UNAUTHORIZED") return;
      root.replaceChildren(h("h1", {}, "Run ", runId), h("p", { class: "error", role: "alert" }, e.message), h("p", {}, h("a", { href: "/app/dash" }, "Back to the dashboard")));
    }
  }

  function handle(ev) {
    // A late status from the host a requeued run was lost with is not the run's now.
    if (ev.type === "node" && ev.ref.run === runId && (ev.node.runAttempt ?? 1) >= run.attempt) applyNode(ev.node);
    else if (ev.type === "run" && ev.summary.ref.run === runId) applyRun(ev.summary);
  }

  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/app/dash" }, "Dashboard"), " › ", h("span", { id: "crumb-flow" }), " › ", h("span", { "aria-current": "page", class: "mono" }, runId.slice(-8))),
    head,
    actions,
    factsBox,
    notifyBox,
    inputs,
    h(
      "div",
      { class: "grid-run" },
      section(
        "Graph",
        {},
        h("ul", { class: "legend", "aria-label": "Node states" }, LEGEND.map((s) => h("li", {}, badge(s)))),
        graphBox,
      ),
      section("Nodes", {}, table("Nodes of this run", ["Node", "Type", "State", "Tries", "Exit", "Took"], nodeRows)),
    ),
    panel.el,
  );
  // This run's own stream: in a cluster, a run executing on another host sends its node
  // events here only while a page (or a log) of it is open.
  const live = app.runLive(runId);
  const off = live.on((ev) => {
    if (ev.type === "resync") return void load();
    if (loading) queue.push(ev);
    else if (run) handle(ev);
  });
  live.start();
  void load().then(() => {
    const crumb = root.querySelector("#crumb-flow");
    if (crumb && run) crumb.replaceChildren(h("a", { href: `/app/flows/${seg(run.ref.flow)}` }, run.name || run.ref.flow));
  });
  return () => {
    gone = true;
    off();
    live.stop();
    panel.stop();
  };
}
