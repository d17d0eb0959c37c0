// Small DOM helpers. Text always goes in as text, never parsed as HTML: task output, form
// values and flow names are written by anyone and must not become markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function addKids(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    el.append(k instanceof Node ? k : String(k));
  }
}

/** An HTML element: h("a", { href, class }, "text", child, [more]). */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  addKids(el, kids);
  return el;
}

/** An SVG element. */
export function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  addKids(el, kids);
  return el;
}

export function shortId(id) {
  return id.length > 12 ? `…${id.slice(-8)}` : id;
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return "";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

export function fmtAgo(at, now = Date.now()) {
  const d = now - at;
  if (d < 5000) return "just now";
  if (d < 60_000) return `${Math.floor(d / 1000)} s ago`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)} min ago`;
  if (d < 172_800_000) return `${Math.floor(d / 3_600_000)} h ago`;
  return `${Math.floor(d / 86_400_000)} d ago`;
}

export function fmtTime(at) {
  return new Date(at).toLocaleString();
}

/** "5 min ago", kept fresh by tickTimes(); the exact time is in the tooltip. */
export function ago(at) {
  if (at === undefined || at === null) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: new Date(at).toISOString(), title: fmtTime(at), "data-ago": at }, fmtAgo(at));
}

/** How long something took, or — while it still runs — how long it has been running. */
export function took(start, end) {
  if (start === undefined || start === null) return h("span", { class: "muted" }, "—");
  if (end !== undefined && end !== null) return h("span", { class: "dur" }, fmtDuration(end - start));
  return h("span", { class: "dur", "data-since": start }, fmtDuration(Date.now() - start));
}

/** Refreshes every relative time and running duration on the page. */
export function tickTimes() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-ago]")) el.textContent = fmtAgo(Number(el.getAttribute("data-ago")), now);
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = fmtDuration(now - Number(el.getAttribute("data-since")));
}

/** A run's or node's state as a word with a colour (the word is there for those who can not see it). */
export function badge(word, extra) {
  return h("span", { class: `badge b-${word}`, ...(extra ?? {}) }, word);
}

export function runBadge(r) {
  if (r.state === "archived") return badge(r.result ?? "ended", { "data-result": r.result ?? "" });
  // A paused run is active (it keeps its slot and locks) but starts nothing: said so beside it.
  return r.paused ? [badge(r.state), " ", badge("paused", { "data-run-paused": "" })] : badge(r.state);
}

export function table(caption, heads, body, attrs) {
  return h(
    "div",
    { class: "scroll-x" },
    h("table", attrs ?? {}, h("caption", { class: "sr-only" }, caption), h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))), body),
  );
}

export function section(title, attrs, ...kids) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id, ...(attrs ?? {}) }, h("h2", { id }, title), kids);
}

/** Calls fn at most once per `ms`, the last call winning. */
export function throttle(fn, ms) {
  let timer;
  let again = false;
  const wrapped = () => {
    if (timer !== undefined) {
      again = true;
      return;
    }
    fn();
    timer = setTimeout(() => {
      timer = undefined;
      if (again) {
        again = false;
        wrapped();
      }
    }, ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

const STATE_RANK = { pending: 0, active: 1, archived: 2 };

/** How far a run has got; a summary read from the API must not undo a later one from the event stream. */
export function runRank(r) {
  return (r.attempt ?? 1) * 10 + (STATE_RANK[r.state] ?? 0);
}

/** Replaces an element's children, skipping null/undefined/false as h() does. */
export function fill(el, ...kids) {
  el.replaceChildren();
  addKids(el, kids);
  return el;
}

/** A <dl> of label/value pairs, each pair kept together when the list wraps. */
export function facts(pairs, attrs) {
  return h("dl", { class: "facts", ...(attrs ?? {}) }, pairs.filter(Boolean).map(([k, ...v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

/**
 * Re-renders rows of `box` without losing the keyboard focus: the focused link or button
 * of a row (marked data-key) is focused again in the row that replaces it.
 */
export function keepFocus(box, render) {
  const active = document.activeElement;
  const key = active instanceof Element && box.contains(active) ? active.closest("[data-key]")?.getAttribute("data-key") : undefined;
  render();
  if (key === undefined || key === null) return;
  const row = box.querySelector(`[data-key="${CSS.escape(key)}"]`);
  row?.querySelector("a, button")?.focus();
}

/**
 * Why a pending run waits, as hub/dispatch.ts words it, with the run holding its resource
 * ("… held by run 01J…") a link to that run's page.
 */
export function waitingReason(text) {
  const m = /^(.* held by run )([0-9A-Za-z]+)(.*)$/s.exec(text);
  if (m === null) return text;
  const [, before, run, after] = m;
  return [before, h("a", { href: `/app/runs/${encodeURIComponent(run)}`, title: `run ${run}` }, run), after];
}
