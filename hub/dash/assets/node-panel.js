// What one node of a run did: state, times, exit code, tries, the event it emitted, a
// merge's waits, a data node's values, a task's outputs and artifacts (download links), and its output tailing live — of one run attempt at
// a time: a run requeued after its host was lost ran again from the start as attempt 2 (on
// another host), and a selector shows each attempt's output apart, the latest by default.
// A node's "tries" count its task's tries within the run's current attempt.
import { seg } from "./api.js";
import { ago, badge, fill, h, took } from "./dom.js";
import { logView } from "./log-view.js";

/**
 * The state to show, which is the node's own except where the run says more: a trigger
 * that did not start this run was not used, the end node that ended it was reached, and a
 * node never reached in an ended run was skipped.
 */
export function shownState(n, run, edges) {
  if (n.class === "trigger") return n.id === run.trigger?.id ? "good" : "skipped";
  if (n.state !== "waiting" || n.enabled) return n.state;
  if (n.class === "task" && n.type === "end" && run.state === "archived") {
    const named = /^end node "([^"]+)" reached/.exec(run.reason ?? "")?.[1];
    if (named === n.id) return run.result === "good" ? "good" : "bad";
    if (named === undefined && edges.some((e) => e.to === n.id && e.fired)) return run.result === "good" ? "good" : "bad";
  }
  return run.state === "archived" ? "skipped" : "waiting";
}

/** The second line of a node's box in the graph. */
export function nodeSub(n, st) {
  if (n.class === "trigger") return st === "good" ? "started this run" : "not used";
  if (n.enabled) return "needs input";
  if (n.class === "task" && n.type === "end" && (st === "good" || st === "bad")) return `reached · ${st}`;
  if (st === "running" && n.instances) return `running · ${n.instances.filter((i) => ["good", "bad", "cancelled"].includes(i.state)).length}/${n.instances.length} done`;
  if (st === "running") return n.attempts > 1 ? `running · try ${n.attempts}` : "running";
  // Held by a pause (hub/pause.ts): due to start, waiting for the resume.
  if (st === "waiting" && n.reason?.startsWith("paused")) return "waiting · paused";
  // A re-run's node taken from the old run (hub/rerun.ts), not executed again.
  if ((st === "good" || st === "bad") && n.reason?.startsWith("replayed")) return `${st} · replayed`;
  if (st === "good" || st === "bad") {
    const bits = [st];
    if (n.exitCode !== undefined && n.exitCode !== 0) bits.push(`exit ${n.exitCode}`);
    else if (n.startedAt && n.endedAt) bits.push(took(n.startedAt, n.endedAt).textContent);
    return bits.join(" · ");
  }
  return st;
}

/** The tags a node emitted, for colouring the edges that carried them. */
export function emitted(n, st) {
  if (n.class === "trigger") return st === "good" ? ["trigger.good"] : [];
  const tags = n.tag ? [n.tag] : [];
  if (n.class === "merge" && n.state === "good") tags.push(`merge.${n.id}.good`);
  return tags;
}

/** The variable later tasks find an output in: hub/upstream-outputs.ts's outputVarName. */
export function outputVar(node, key) {
  const part = (s) => s.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  return `FLOE_OUT_${part(node)}_${part(key)}`;
}

/** Where an artifact's bytes are downloaded (the session cookie authenticates the link). */
export function artifactUrl(app, runId, node, name) {
  return `${app.base}/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(node)}/artifacts/${encodeURIComponent(name)}`;
}

export function fmtBytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

const HAS_LOG = (n) => n.class === "task" && ((n.type !== "data" && n.type !== "end") || n.logLines > 0);

export function nodePanel(app, runId) {
  const details = h("div", { class: "node-details" });
  const logBox = h("div", {});
  const attemptBar = h("div", { class: "attempts", role: "group", "aria-label": "Output of run attempt" });
  const attemptNote = h("p", { class: "note small", "data-attempt-note": "", hidden: true });
  /** The run's latest attempt, and the one whose output is shown when someone picked another. */
  let latest = 1;
  let chosen;
  let shown;
  const title = h("h2", { id: "node-title", tabindex: -1 });
  const el = h("section", { class: "card node-panel", "aria-labelledby": "node-title", hidden: true }, h("div", { class: "panel-head" }, title, h("button", { type: "button", class: "small", onclick: () => close() }, "Close")), details, logBox);
  let current;
  let log;
  /** A for-each task: the instance whose output is shown alone, and the node last rendered. */
  let onlyInstance;
  let lastShown;
  let onClose = () => {};

  function close() {
    log?.stop();
    log = undefined;
    shown = undefined;
    current = undefined;
    el.hidden = true;
    onClose();
  }

  function render(n, st) {
    lastShown = { n, st };
    fill(title, n.name, " ", badge(st, { "data-node-state": st }));
    const rows = [
      ["id", h("code", {}, n.id)],
      ["type", n.class === "task" ? n.type : `${n.class} · ${n.type}`],
      n.class === "task" ? ["tries", latest > 1 ? `${n.attempts} in run attempt ${n.runAttempt ?? 1}` : String(n.attempts)] : null,
      n.startedAt ? ["started", ago(n.startedAt)] : null,
      n.endedAt ? ["ended", ago(n.endedAt)] : null,
      n.startedAt && n.class === "task" && n.type !== "data" ? ["took", took(n.startedAt, n.endedAt)] : null,
      n.exitCode !== undefined ? ["exit code", h("span", { "data-exit": n.exitCode }, String(n.exitCode))] : null,
      n.tag ? ["emitted", h("code", {}, n.tag)] : null,
      n.child ? ["child run", h("a", { href: `/app/runs/${seg(n.child)}`, "data-child-run": n.child }, n.child)] : null,
      n.reason ? ["reason", h("span", { class: "why" }, n.reason)] : null,
    ].filter(Boolean);
    const waits = n.waits
      ? h("div", {}, h("h3", {}, "Waits"), h("ul", { class: "waits" }, Object.entries(n.waits).map(([tag, got]) => h("li", { class: got ? "got" : "" }, got ? "✔ " : "… ", h("code", {}, tag), got ? " arrived" : " not yet"))))
      : null;
    // A data node says who gave its input: an approval records who approved.
    const values = n.values && Object.keys(n.values).length
      ? h("div", { "data-values": "" }, h("h3", {}, "Values", n.by ? h("span", { class: "muted small", "data-by": "" }, ` given by ${n.by}`) : null), h("dl", { class: "kv" }, Object.entries(n.values).map(([k, v]) => [h("dt", {}, k), h("dd", {}, h("code", { class: "wrap" }, v))])))
      : null;
    // What the task wrote to $FLOE_OUTPUT; later tasks see each as FLOE_OUT_<NODE>_<KEY> (hub/upstream-outputs.ts).
    const outputs = n.outputs && Object.keys(n.outputs).length
      ? h("div", { "data-outputs": "" }, h("h3", {}, "Outputs"), h("dl", { class: "kv" }, Object.entries(n.outputs).map(([k, v]) => [h("dt", {}, k), h("dd", {}, h("code", { class: "wrap" }, v), " ", h("span", { class: "muted small" }, `$${outputVar(n.id, k)}`))])))
      : null;
    // The files it left in $FLOE_ARTIFACTS; later tasks find each under $FLOE_INPUTS/<node>/<name> (hub/task-artifacts.ts).
    const artifacts = n.artifacts && n.artifacts.length
      ? h("div", { "data-artifacts": "" }, h("h3", {}, "Artifacts"), h("ul", { class: "artifacts" }, n.artifacts.map((a) =>
          h("li", {}, h("a", { href: artifactUrl(app, runId, n.id, a.name), download: a.name, "data-artifact": a.name }, a.name), " ", h("span", { class: "muted small", title: `SHA-256 ${a.sha256}` }, `${fmtBytes(a.size)} · sha256 ${a.sha256.slice(0, 12)}…`)),
        )))
      : null;
    const instances = n.instances ? instancesEl(n.instances) : null;
    const input = n.enabled ? h("p", { class: "note" }, app.can("operator") ? "This form is waiting for input: fill it in above." : "This form is waiting for input from an operator.") : null;
    fill(details, h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])), waits, values, outputs, artifacts, instances, input);
  }

  /** A for-each task's instances: counts by state, and a row per instance whose "log" shows only its lines. */
  function instancesEl(list) {
    const counts = {};
    for (const i of list) counts[i.state] = (counts[i.state] ?? 0) + 1;
    const summary = Object.entries(counts).map(([st, c]) => `${c} ${st}`).join(" · ");
    const row = (i) =>
      h(
        "tr",
        { "data-instance": i.index, class: onlyInstance === i.index ? "picked" : "" },
        h("td", { class: "num" }, String(i.index)),
        h("td", {}, h("code", { class: "wrap" }, i.name)),
        h("td", {}, badge(i.state, { "data-instance-state": i.state })),
        h("td", { class: "num" }, i.exitCode !== undefined ? String(i.exitCode) : ""),
        h("td", {}, i.startedAt ? took(i.startedAt, i.endedAt) : ""),
        h("td", {}, i.child ? h("a", { href: `/app/runs/${encodeURIComponent(i.child)}`, "data-child": i.child }, "child run") : null, i.reason ? h("span", { class: "why small" }, ` ${i.reason}`) : null),
        h("td", {}, h("button", { type: "button", class: "small", "aria-pressed": String(onlyInstance === i.index), onclick: () => showInstance(onlyInstance === i.index ? undefined : i.index) }, "log")),
      );
    return h(
      "div",
      { "data-instances": "" },
      h("h3", {}, "Instances ", h("span", { class: "muted small", "data-instance-counts": "" }, `${list.length}: ${summary}`)),
      h("table", { class: "instances" }, h("thead", {}, h("tr", {}, ["#", "item", "state", "exit", "took", "", ""].map((c) => h("th", {}, c)))), h("tbody", {}, list.map(row))),
    );
  }

  function showInstance(i) {
    onlyInstance = i;
    log?.showInstance(i);
    if (lastShown !== undefined) render(lastShown.n, lastShown.st);
  }

  function openLog(n) {
    log?.stop();
    shown = n;
    const attempt = chosen ?? latest;
    // The node's line count is of the latest attempt; an earlier one's output is read from its start.
    log = logView(app, runId, n.id, attempt === latest ? n.logLines ?? 0 : 0, attempt);
    log.showInstance(onlyInstance);
    renderAttempts();
    logBox.replaceChildren(h("div", { class: "log-head" }, h("h3", {}, "Output"), attemptBar), attemptNote, log.el);
  }

  function renderAttempts() {
    const attempt = chosen ?? latest;
    attemptBar.hidden = latest < 2;
    const focused = attemptBar.contains(document.activeElement);
    attemptBar.replaceChildren(
      h("span", { class: "muted small" }, "run attempt"),
      ...Array.from({ length: latest }, (_, i) => i + 1).map((a) =>
        h("button", { type: "button", class: "small", "data-attempt": a, "aria-pressed": String(a === attempt), onclick: () => pick(a) }, `attempt ${a}`),
      ),
    );
    if (focused) attemptBar.querySelector("[aria-pressed=true]")?.focus();
    attemptNote.hidden = attempt === latest;
    attemptNote.textContent = attempt === latest ? "" : `Output of run attempt ${attempt}, which ended when its host was lost; the node's state above is of run attempt ${latest}.`;
  }

  function pick(a) {
    const next = a === latest ? undefined : a;
    if (next === chosen) return;
    chosen = next;
    if (shown !== undefined) openLog(shown);
  }

  return {
    el,
    /** The run's latest attempt (a requeue adds one): followed unless an earlier one was picked. */
    setAttempts(n) {
      if (!(n > latest)) return;
      latest = n;
      if (shown === undefined) return;
      if (chosen === undefined) openLog(shown);
      else renderAttempts();
    },
    get nodeId() {
      return current;
    },
    set onClose(fn) {
      onClose = fn;
    },
    /** Shows node `n` (a NodeStatus) in state `st`; when it is already shown, only its details change. */
    show(n, st) {
      const fresh = current !== n.id;
      if (fresh) {
        onlyInstance = undefined;
        log?.stop();
        log = undefined;
        shown = undefined;
        logBox.replaceChildren();
      }
      current = n.id;
      el.hidden = false;
      render(n, st);
      if (fresh && HAS_LOG(n)) openLog(n);
      return fresh;
    },
    /** Brings the panel into view, its top at the top of the window, and focuses its title. */
    focus() {
      // The panel sits below the graph and the node table, mostly below the fold: focusing
      // the title alone scrolls only as far as the title's own line, leaving the panel unseen.
      el.scrollIntoView({ block: "start", behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
      title.focus({ preventScroll: true });
    },
    stop() {
      log?.stop();
    },
  };
}
