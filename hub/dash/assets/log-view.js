// One node's output in one run attempt, tailing live: the last page of lines first, older
// pages on request, then a long poll (GET …/log?attempt=N&after=SEQ&wait=…) that returns as
// soon as new lines exist. Each attempt numbers its lines from 1, so one view never mixes two.
// Lines are appended in batches and the page keeps at most MAX_DOM of them, so a task
// printing fast or long can not freeze the tab.
import { seg } from "./api.js";
import { ansiLine } from "./ansi.js";
import { h } from "./dom.js";

const PAGE = 1000;
const MAX_DOM = 5000;
const WAIT_MS = 25_000;

/** Resolves once the tab is visible: a hidden tab does not hold a connection for a log nobody reads. */
function visible() {
  if (!document.hidden) return Promise.resolve();
  return new Promise((resolve) => {
    const on = () => {
      if (document.hidden) return;
      document.removeEventListener("visibilitychange", on);
      resolve();
    };
    document.addEventListener("visibilitychange", on);
  });
}

export function logView(app, runId, nodeId, knownLines, attempt) {
  const ctrl = new AbortController();
  const path = `/runs/${seg(runId)}/nodes/${seg(nodeId)}/log`;
  const box = h("div", { class: "log", role: "log", tabindex: 0, "aria-label": `Output of ${nodeId}, run attempt ${attempt}`, "data-log": nodeId, "data-attempt": attempt });
  const earlier = h("button", { type: "button", class: "small", hidden: true, onclick: () => void loadEarlier() }, "");
  const status = h("span", { class: "log-status muted small", role: "status" });
  const follow = h("input", { type: "checkbox", id: `follow-${nodeId}`, checked: true });
  const el = h(
    "div",
    { class: "logview" },
    h("div", { class: "log-bar" }, earlier, h("span", { class: "grow" }), status, h("label", { class: "small", for: follow.id }, follow, " follow")),
    box,
  );
  let first = Math.max(0, knownLines - PAGE); // lines with seq <= first are not on the page
  let last = first;
  let stopped = false;
  /** A for-each task: the one instance whose lines are shown (undefined: all, each marked). */
  let only;

  function lineEl(l) {
    const inst = l.instance;
    const el = h("div", { class: `l s-${l.stream ?? "out"}`, "data-seq": l.seq, "data-instance": inst, title: new Date(l.at).toLocaleTimeString() }, inst !== undefined ? h("span", { class: "inst muted" }, `#${inst} `) : null, ansiLine(l.text));
    el.hidden = only !== undefined && inst !== only;
    return el;
  }

  function showEarlier() {
    earlier.hidden = first <= 0;
    earlier.textContent = `Show earlier lines (${first} not shown)`;
  }

  function append(lines) {
    if (lines.length === 0) return;
    const stick = follow.checked;
    const frag = document.createDocumentFragment();
    for (const l of lines) {
      if (l.seq <= last) continue;
      frag.append(lineEl(l));
      last = l.seq;
    }
    box.append(frag);
    const extra = box.childElementCount - MAX_DOM;
    if (extra > 0) {
      for (let i = 0; i < extra; i++) box.firstElementChild?.remove();
      first = Number(box.firstElementChild?.getAttribute("data-seq") ?? last) - 1;
    }
    box.classList.remove("empty");
    showEarlier();
    if (stick) box.scrollTop = box.scrollHeight;
  }

  async function loadEarlier() {
    const after = Math.max(0, first - PAGE);
    earlier.disabled = true;
    try {
      const r = await app.api.get(`${path}?attempt=${attempt}&after=${after}&limit=${first - after}`, { signal: ctrl.signal });
      const height = box.scrollHeight;
      box.prepend(...r.lines.filter((l) => l.seq <= first).map(lineEl));
      first = after;
      box.scrollTop += box.scrollHeight - height;
      showEarlier();
    } catch (e) {
      if (!stopped) status.textContent = e.message;
    } finally {
      earlier.disabled = false;
    }
  }

  // Following is the user's choice: scrolling up stops it, scrolling back to the end resumes it.
  box.addEventListener("scroll", () => {
    follow.checked = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  });

  follow.addEventListener("change", () => {
    if (follow.checked) box.scrollTop = box.scrollHeight;
  });

  async function tail() {
    let failures = 0;
    box.classList.add("empty");
    showEarlier();
    while (!stopped) {
      await visible();
      if (stopped) return;
      try {
        const r = await app.api.get(`${path}?attempt=${attempt}&after=${last}&limit=${PAGE}&wait=${WAIT_MS}`, { signal: ctrl.signal, timeoutMs: WAIT_MS + 10_000 });
        failures = 0;
        append(r.lines);
        status.textContent = r.live ? "live" : "";
        box.setAttribute("aria-busy", r.live ? "true" : "false");
        if (!r.more && !r.live) {
          status.textContent = last === 0 ? "no output" : "end of output";
          return;
        }
      } catch (e) {
        if (stopped) return;
        if (e.status >= 400 && e.status < 500) {
          status.textContent = e.message;
          return;
        }
        failures++;
        status.textContent = "reconnecting…";
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** failures, 15_000)));
      }
    }
  }
  void tail();

  return {
    el,
    /** Shows only the lines of for-each instance `i` (undefined: every instance's). */
    showInstance(i) {
      only = i;
      for (const line of box.children) line.hidden = i !== undefined && line.getAttribute("data-instance") !== String(i);
    },
    stop() {
      stopped = true;
      ctrl.abort();
    },
  };
}
