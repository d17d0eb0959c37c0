// A flow drawn as a DAG in SVG: one row per level (triggers on top), nodes ordered under
// their sources to keep edges short, edges labelled by the event tag that links them.
// Triggers are pills, merges hexagons, end nodes double-framed. On the run page each node
// carries its state (data-state) and the edges whose tag was emitted are drawn solid.
import { svg } from "./dom.js";

const W = 160;
const H = 48;
const HG = 26;
const VG = 62;
const PAD = 14;
let seq = 0;

function fit(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function describe(n) {
  if (n.class === "trigger") return `trigger · ${n.type}`;
  if (n.class === "merge") return `merge · ${n.type}`;
  return n.type;
}

function tagKind(tag) {
  const last = tag.slice(tag.lastIndexOf(".") + 1);
  return { label: last, kind: last === "good" ? "good" : last === "bad" || last === "error" ? "bad" : "status" };
}

/** Positions: rows by level, each row ordered by where its sources sit, then centred. */
function layout(graph) {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const sources = new Map();
  for (const e of graph.edges) sources.set(e.to, [...(sources.get(e.to) ?? []), e.from]);
  const x = new Map();
  const rows = graph.levels.map((ids) => ids.filter((id) => byId.has(id)));
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = PAD * 2 + widest * W + (widest - 1) * HG;
  rows.forEach((row, level) => {
    if (level > 0) {
      const want = (id) => {
        const xs = (sources.get(id) ?? []).map((s) => x.get(s)).filter((v) => v !== undefined);
        return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : width / 2;
      };
      row.sort((a, b) => want(a) - want(b));
    }
    const rowWidth = row.length * W + (row.length - 1) * HG;
    const left = (width - rowWidth) / 2;
    row.forEach((id, i) => x.set(id, left + i * (W + HG) + W / 2));
  });
  const pos = new Map();
  rows.forEach((row, level) => row.forEach((id) => pos.set(id, { cx: x.get(id) ?? 0, top: PAD + level * (H + VG) })));
  return { pos, width, height: PAD * 2 + rows.length * H + Math.max(0, rows.length - 1) * VG };
}

function shape(n) {
  if (n.class === "trigger") return [svg("rect", { class: "shape", width: W, height: H, rx: H / 2 })];
  if (n.class === "merge") {
    const k = 14;
    return [svg("polygon", { class: "shape", points: `${k},0 ${W - k},0 ${W},${H / 2} ${W - k},${H} ${k},${H} 0,${H / 2}` })];
  }
  if (n.type === "end") return [svg("rect", { class: "shape", width: W, height: H, rx: 6 }), svg("rect", { class: "inner", x: 4, y: 4, width: W - 8, height: H - 8, rx: 4 })];
  return [svg("rect", { class: "shape", width: W, height: H, rx: 6 })];
}

/**
 * drawGraph(graph, { onSelect }) → { el, setStatus(id, {state, sub, tag}), select(id) }.
 * With onSelect, nodes are buttons (Tab to reach, Enter or Space to open).
 */
export function drawGraph(graph, o = {}) {
  const id = `g${++seq}`;
  const { pos, width, height } = layout(graph);
  const nodeEls = new Map();
  const subEls = new Map();
  const edgeEls = [];
  const defs = svg(
    "defs",
    {},
    ["plain", "fired", "bad"].map((k) =>
      svg("marker", { id: `${id}-${k}`, class: `arrow-${k}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z" })),
    ),
  );

  // Edges leave a source through one port per tag and reach a target through one port per
  // incoming edge, so a merge shows each of its waits arriving separately.
  const outTags = new Map();
  const inCount = new Map();
  for (const e of graph.edges) {
    const tags = outTags.get(e.from) ?? [];
    if (!tags.includes(e.tag)) tags.push(e.tag);
    outTags.set(e.from, tags);
    inCount.set(e.to, (inCount.get(e.to) ?? 0) + 1);
  }
  const inSeen = new Map();
  const edges = svg("g", { class: "edges" });
  const labels = svg("g", { class: "labels" });
  for (const e of graph.edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (a === undefined || b === undefined) continue;
    const tags = outTags.get(e.from) ?? [e.tag];
    const ti = tags.indexOf(e.tag);
    const x1 = a.cx + (ti - (tags.length - 1) / 2) * 36;
    const y1 = a.top + H;
    const k = inCount.get(e.to) ?? 1;
    const ki = inSeen.get(e.to) ?? 0;
    inSeen.set(e.to, ki + 1);
    const x2 = b.cx + (ki - (k - 1) / 2) * Math.min(22, (W - 30) / Math.max(1, k - 1));
    const y2 = b.top - 2;
    const dy = Math.max(30, (y2 - y1) / 2);
    const { label, kind } = tagKind(e.tag);
    const path = svg(
      "path",
      { class: `edge e-${kind}`, d: `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2}`, "marker-end": `url(#${id}-${kind === "bad" ? "bad" : "plain"})`, "data-from": e.from, "data-to": e.to, "data-tag": e.tag },
      svg("title", {}, `${e.from} → ${e.to} on ${e.tag}`),
    );
    edgeEls.push({ e, path, kind });
    edges.append(path);
    if (ti >= 0 && !labels.querySelector(`[data-port="${CSS.escape(`${e.from}|${e.tag}`)}"]`)) {
      labels.append(svg("text", { class: `elabel e-${kind}`, x: x1 + 4, y: y1 + 14, "data-port": `${e.from}|${e.tag}` }, label, svg("title", {}, e.tag)));
    }
  }

  const nodes = svg("g", { class: "nodes" });
  for (const n of graph.nodes) {
    const p = pos.get(n.id);
    if (p === undefined) continue;
    const sub = svg("text", { class: "sub", x: W / 2, y: 36 }, fit(describe(n), 24));
    const g = svg(
      "g",
      {
        class: `node c-${n.class} t-${n.type}`,
        transform: `translate(${p.cx - W / 2},${p.top})`,
        "data-node": n.id,
        "data-class": n.class,
        "data-type": n.type,
        ...(o.onSelect ? { tabindex: 0, role: "button", "aria-label": `${n.name} (${describe(n)})` } : {}),
      },
      svg("title", {}, `${n.name} — ${n.id} (${describe(n)})`),
      shape(n),
      svg("text", { class: "name", x: W / 2, y: 20 }, fit(n.name, 20)),
      sub,
    );
    if (o.onSelect) {
      g.addEventListener("click", () => o.onSelect(n.id));
      g.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          o.onSelect(n.id);
        }
      });
    }
    nodeEls.set(n.id, g);
    subEls.set(n.id, sub);
    nodes.append(g);
  }

  const el = svg("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": o.label ?? "Flow graph" }, defs, edges, labels, nodes);
  // In a narrow window the graph shrinks to fit, but not below 70% (its text would be too
  // small to read); past that its box scrolls.
  el.style.minWidth = `${Math.round(width * 0.7)}px`;
  const fired = new Map();

  return {
    el,
    /** Colours a node by state; `sub` replaces its second line; `tag` is the event it emitted. */
    setStatus(nodeId, st) {
      const g = nodeEls.get(nodeId);
      if (g === undefined) return;
      g.setAttribute("data-state", st.state);
      g.classList.toggle("needs-input", !!st.needsInput);
      if (o.onSelect) g.setAttribute("aria-label", `${g.querySelector("title")?.textContent ?? nodeId}: ${st.sub ?? st.state}`);
      const sub = subEls.get(nodeId);
      if (sub && st.sub) sub.textContent = fit(st.sub, 24);
      fired.set(nodeId, st.tags ?? []);
      for (const { e, path, kind } of edgeEls) {
        const on = (fired.get(e.from) ?? []).includes(e.tag);
        path.classList.toggle("fired", on);
        path.setAttribute("marker-end", `url(#${id}-${on ? (kind === "bad" ? "bad" : "fired") : kind === "bad" ? "bad" : "plain"})`);
      }
    },
    select(nodeId) {
      for (const [k, g] of nodeEls) g.classList.toggle("sel", k === nodeId);
    },
  };
}
