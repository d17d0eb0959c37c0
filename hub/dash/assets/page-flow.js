// A flow: its graph, its triggers (a form to start a run from each data trigger), and its
// runs — pending with why each waits, active with their host, archived with result and
// duration, paged — kept current by the event stream; and its tainted runs (made by a
// definition that has since changed), to re-run one or all from their first changed node.
import { seg } from "./api.js";
import { ago, badge, facts, fill, h, keepFocus, runBadge, runRank, section, shortId, table, took, waitingReason } from "./dom.js";
import { buildForm } from "./form.js";
import { drawGraph } from "./graph.js";

const PAGE = 20;

function optsList(app, flowId, t) {
  const rows = [];
  const add = (k, v) => rows.push(h("dt", {}, k), h("dd", {}, v));
  if (t.type === "git-push" || t.type === "webhook") {
    add("post to", h("code", { class: "wrap" }, `${location.origin}${app.api.base}/hooks/${flowId}/${t.id}`));
    add("signed", t.secured ? "yes (HMAC secret)" : "no");
  }
  for (const [k, v] of Object.entries(t.opts ?? {})) {
    if (k.toLowerCase() === "form" || v === null || typeof v === "object") continue;
    add(k, h("code", { class: "wrap" }, String(v)));
  }
  return rows.length ? h("dl", { class: "kv" }, rows) : null;
}

function runRow(r, kind) {
  const link = h("a", { href: `/app/runs/${seg(r.ref.run)}`, class: "mono", title: r.ref.run }, shortId(r.ref.run));
  const cells = [h("th", { scope: "row" }, link)];
  if (kind === "pending") cells.push(h("td", {}, ago(r.adoptedAt)), h("td", { class: "why" }, r.waiting ? waitingReason(r.waiting) : h("span", { class: "muted" }, "waiting for the dispatcher")));
  if (kind === "active") cells.push(h("td", {}, r.ref.execHost ?? "—"), h("td", {}, ago(r.startedAt)), h("td", {}, took(r.startedAt)), h("td", { class: "num" }, String(r.attempt)));
  if (kind === "archived") cells.push(h("td", {}, runBadge(r)), h("td", {}, ago(r.endedAt)), h("td", {}, took(r.startedAt ?? r.adoptedAt, r.endedAt ?? r.adoptedAt)), h("td", { class: "small why" }, r.reason ?? ""));
  return h("tr", { "data-run": r.ref.run, "data-key": r.ref.run, "data-state": r.state }, cells);
}

const HEADS = {
  pending: ["Run", "Adopted", "Why it waits"],
  active: ["Run", "Host", "Started", "Running for", "Attempt"],
  archived: ["Run", "Result", "Ended", "Took", "Reason"],
};

export function mountFlow(app, [flowId], root) {
  let gone = false;
  let loading = false;
  const queue = [];
  const lists = { pending: new Map(), active: new Map(), archived: new Map() };
  let archivedTotal = 0;
  const before = []; // the archived page's cursors: empty on the newest page
  const bodies = { pending: h("tbody"), active: h("tbody"), archived: h("tbody") };
  const heads = { pending: h("h3", {}), active: h("h3", {}), archived: h("h3", {}) };
  const taintedBox = h("section", { class: "card", id: "tainted", "aria-labelledby": "tainted-title", hidden: true });
  const newer = h("button", { type: "button", class: "small", onclick: () => page(-1) }, "← Newer");
  const older = h("button", { type: "button", class: "small", onclick: () => page(1) }, "Older →");

  function renderList(kind) {
    const list = [...lists[kind].values()].sort((a, b) => (a.ref.run < b.ref.run ? 1 : -1));
    keepFocus(bodies[kind], () => {
      bodies[kind].replaceChildren(...list.map((r) => runRow(r, kind)));
      if (list.length === 0) bodies[kind].append(h("tr", {}, h("td", { colspan: HEADS[kind].length, class: "muted" }, `No ${kind} runs.`)));
    });
    const n = kind === "archived" ? archivedTotal : list.length;
    heads[kind].textContent = `${kind[0].toUpperCase()}${kind.slice(1)} (${n})`;
    if (kind === "archived") {
      newer.disabled = before.length === 0;
      older.disabled = list.length < PAGE;
    }
  }

  async function loadArchived() {
    const cursor = before.at(-1);
    const r = await app.api.get(`/runs?flow=${seg(flowId)}&state=archived&limit=${PAGE}${cursor ? `&before=${seg(cursor)}` : ""}`);
    lists.archived = new Map(r.runs.map((x) => [x.ref.run, x]));
  }

  async function page(dir) {
    if (dir > 0) {
      const last = [...lists.archived.keys()].sort().at(0);
      if (last === undefined) return;
      before.push(last);
    } else before.pop();
    try {
      await loadArchived();
    } catch (e) {
      app.flash(`Runs could not be read: ${e.message}`);
    }
    if (!gone) renderList("archived");
  }

  async function loadTainted() {
    const r = await app.api.get(`/flows/${seg(flowId)}/tainted`).catch(() => ({ runs: [] }));
    if (gone) return;
    renderTainted(r.runs);
  }

  function renderTainted(list) {
    taintedBox.hidden = list.length === 0;
    const note = h("p", { class: "error", role: "alert" });
    const rerun = async (button, runs) => {
      button.disabled = true;
      try {
        await app.api.post(`/flows/${seg(flowId)}/tainted/rerun`, runs ? { runs } : {});
        await loadTainted();
      } catch (e) {
        note.textContent = e.message;
        button.disabled = false;
      }
    };
    const op = app.can("operator");
    const rows = list.map((x) =>
      h(
        "tr",
        { "data-tainted": x.run },
        h("th", { scope: "row" }, h("a", { href: `/app/runs/${seg(x.run)}`, class: "mono", title: x.run }, shortId(x.run))),
        h("td", {}, x.result ? badge(x.result) : ""),
        h("td", { class: "why" }, x.changed),
        h("td", {}, op ? h("button", { type: "button", class: "small", "data-tainted-rerun": x.run, onclick: (e) => void rerun(e.currentTarget, [x.run]) }, x.from ? `Re-run from ${x.from}` : "Re-run from the start") : ""),
      ),
    );
    fill(
      taintedBox,
      h("h2", { id: "tainted-title" }, `Tainted runs (${list.length})`),
      h("p", { class: "muted small" }, "Archived runs made by a definition of this flow that has since changed, in a node they went through. A re-run uses the current definition from that node; the nodes before it are replayed."),
      table("Tainted runs", ["Run", "Result", "What changed", "Re-run"], h("tbody", {}, rows)),
      op && list.length > 1 ? h("button", { type: "button", id: "tainted-rerun-all", onclick: (e) => void rerun(e.currentTarget) }, `Re-run all (${Math.min(list.length, 50)})`) : null,
      note,
    );
  }

  function startForm(flow, t) {
    if (!app.can("operator")) return h("p", { class: "muted small" }, "Operators can start runs from this form.");
    return buildForm({
      title: t.form?.title || `Start ${flow.name}`,
      fields: t.form?.fields ?? [],
      submitLabel: "Start run",
      attrs: { "data-trigger": t.id },
      onSubmit: async (values) => {
        const r = await app.api.post(`/flows/${seg(flowId)}/runs`, { trigger: t.id, values });
        app.navigate(`/app/runs/${seg(r.run.ref.run)}`);
      },
    });
  }

  function renderFlow(res) {
    const f = res.flow;
    const pairs = [
      ["id", f.id],
      ["version", res.versions.length > 1 ? `${f.ver} (of ${res.versions.join(", ")})` : String(f.ver)],
      ["host tags", f.hostTags?.length ? f.hostTags.join(", ") : "any host"],
      ["resource tags", f.resourceTags?.length ? f.resourceTags.join(", ") : "none"],
      f.concurrency !== undefined ? ["concurrency", String(f.concurrency)] : null,
      f.queueLimit !== undefined ? ["queue", `${f.queueLimit} (${f.queueStrategy})`] : null,
      f.queueStrategy === "debounce" && f.debounceMs !== undefined ? ["debounce", `${Math.round(f.debounceMs / 1000)} s: a newer trigger replaces a waiting one`] : null,
      f.onUpdate && f.onUpdate !== "keep" ? ["on update", f.onUpdate] : null,
      f.timeoutMs !== undefined ? ["timeout", `${Math.round(f.timeoutMs / 1000)} s`] : null,
      f.flowFile ? ["flow-file", f.flowFile] : null,
    ];
    const graph = drawGraph(f.graph, { label: `Graph of ${f.name}` });
    const triggers = f.triggers.map((t) =>
      h(
        "article",
        { class: "trigger", "data-trigger-card": t.id },
        h("h3", {}, t.name, " ", badge(t.type)),
        optsList(app, flowId, t),
        t.type === "data" ? startForm(f, t) : null,
      ),
    );
    fill(
      root,
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/app/dash" }, "Dashboard"), " › ", h("span", { "aria-current": "page" }, f.name)),
      h("h1", {}, f.name),
      facts(pairs),
      h("div", { class: "grid-flow" }, section("Graph", {}, h("div", { class: "graph-wrap" }, graph.el)), section("Triggers", {}, triggers.length ? triggers : h("p", { class: "muted" }, "No triggers."))),
      section(
        "Runs",
        { id: "runs" },
        h("div", { class: "runs3" },
          h("div", { "data-list": "pending" }, heads.pending, table("Pending runs", HEADS.pending, bodies.pending)),
          h("div", { "data-list": "active" }, heads.active, table("Active runs", HEADS.active, bodies.active)),
          h("div", { "data-list": "archived" }, heads.archived, table("Archived runs", HEADS.archived, bodies.archived), h("div", { class: "pager" }, newer, older)),
        ),
      ),
      taintedBox,
    );
  }

  function apply(s) {
    const id = s.ref.run;
    const was = ["pending", "active", "archived"].find((k) => lists[k].has(id));
    const known = was ? lists[was].get(id) : undefined;
    if (known && runRank(known) > runRank(s)) return;
    if (was) lists[was].delete(id);
    if (s.state === "archived" && was !== "archived") archivedTotal++;
    // Later pages of the history stay as they are; new results show on the newest page.
    if (s.state !== "archived" || before.length === 0 || was === "archived") lists[s.state].set(id, s);
    for (const k of new Set([was, s.state])) if (k) renderList(k);
  }

  async function load() {
    loading = true;
    try {
      const [res, pending, active] = await Promise.all([
        app.api.get(`/flows/${seg(flowId)}`),
        app.api.get(`/runs?flow=${seg(flowId)}&state=pending&limit=500`),
        app.api.get(`/runs?flow=${seg(flowId)}&state=active&limit=500`),
        loadArchived(),
      ]);
      if (gone) return;
      document.title = `${res.flow.name} · floe`;
      archivedTotal = res.runs.archived;
      lists.pending = new Map(pending.runs.map((x) => [x.ref.run, x]));
      lists.active = new Map(active.runs.map((x) => [x.ref.run, x]));
      if (!root.querySelector(".graph")) renderFlow(res);
      for (const k of ["pending", "active", "archived"]) renderList(k);
      void loadTainted();
      loading = false;
      for (const ev of queue.splice(0)) apply(ev.summary);
      root.setAttribute("data-ready", "");
    } catch (e) {
      loading = false;
      if (gone || e.code === "E_UNAUTHORIZED") return;
      root.replaceChildren(h("h1", {}, "Flow ", flowId), h("p", { class: "error", role: "alert" }, e.message), h("p", {}, h("a", { href: "/app/dash" }, "Back to the dashboard")));
    }
  }

  const off = app.live.on((ev) => {
    if (ev.type === "resync") return void load();
    if (ev.type !== "run" || ev.summary.ref.flow !== flowId) return;
    if (loading) queue.push(ev);
    else apply(ev.summary);
  });
  void load();
  return () => {
    gone = true;
    off();
  };
}
