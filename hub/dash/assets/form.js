// Forms built from a flow's form fields ({id, prompt, type, kind, value, required, options}):
// a data trigger's form starts a run, a data node's form feeds a waiting run.
import { h } from "./dom.js";

let seq = 0;
const INPUT_TYPES = new Set(["email", "url", "date", "password", "tel"]);

function control(f, id, value) {
  const common = { id, name: f.id, "data-field": f.id };
  if (f.kind === "bool") return h("input", { ...common, type: "checkbox", checked: value === "true" });
  if (f.kind === "number") return h("input", { ...common, type: "number", step: ["int", "integer"].includes(f.type) ? "1" : "any", value: value ?? "", required: f.required });
  if (f.kind === "choice") {
    return h(
      "select",
      { ...common, required: f.required },
      f.required && value === undefined ? h("option", { value: "" }, "— choose —") : null,
      !f.required ? h("option", { value: "" }, "") : null,
      (f.options ?? []).map((opt) => h("option", { value: opt, selected: opt === value }, opt)),
    );
  }
  // "text" is free text, often several lines (flows/forms.ts); "string" stays one line.
  if (f.type === "text" || f.type === "textarea") return h("textarea", { ...common, rows: 3, required: f.required }, value ?? "");
  return h("input", { ...common, type: INPUT_TYPES.has(f.type) ? f.type : "text", value: value ?? "", required: f.required });
}

/**
 * buildForm({ fields, values, title, submitLabel, onSubmit(values), onReject?(reason) }).
 * onSubmit may throw an ApiError: its message is shown, and fields it names are marked.
 */
export function buildForm(o) {
  const n = ++seq;
  const fields = o.fields ?? [];
  const controls = new Map();
  const error = h("p", { class: "error", role: "alert" });
  const rows = [];
  for (const f of fields) {
    const id = `f${n}-${f.id}`;
    const value = o.values?.[f.id] ?? f.value;
    if (f.type === "hidden") {
      const c = h("input", { type: "hidden", name: f.id, value: value ?? "" });
      controls.set(f.id, { f, c });
      rows.push(c);
      continue;
    }
    const c = control(f, id, value);
    controls.set(f.id, { f, c });
    const label = h("label", { for: id }, f.prompt || f.id, f.required && f.kind !== "bool" ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null);
    rows.push(h("div", { class: f.kind === "bool" ? "field check" : "field" }, f.kind === "bool" ? [c, label] : [label, c]));
  }
  const submit = h("button", { type: "submit", class: "primary" }, o.submitLabel ?? "Submit");
  const reason = o.onReject ? h("input", { id: `f${n}-reason`, name: "reason", placeholder: "why (optional)" }) : null;
  const reject = o.onReject ? h("button", { type: "button", class: "danger" }, "Reject") : null;

  function values() {
    const out = {};
    for (const [k, { f, c }] of controls) {
      if (f.kind === "bool") out[k] = c.checked;
      else if (c.value !== "") out[k] = c.value;
    }
    return out;
  }

  async function run(fn, button) {
    error.textContent = "";
    for (const { c } of controls.values()) c.removeAttribute("aria-invalid");
    submit.disabled = true;
    if (reject) reject.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await fn();
    } catch (e) {
      error.textContent = e.message ?? String(e);
      const named = [...(e.details?.missing ?? []), ...[...controls.keys()].filter((k) => (e.message ?? "").includes(`"${k}"`))];
      for (const k of named) controls.get(k)?.c.setAttribute("aria-invalid", "true");
    } finally {
      submit.disabled = false;
      if (reject) reject.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  const form = h(
    "form",
    {
      class: "dataform",
      ...(o.attrs ?? {}),
      onsubmit: (e) => {
        e.preventDefault();
        void run(() => o.onSubmit(values()), submit);
      },
    },
    rows.length ? h("fieldset", {}, h("legend", {}, o.title || "Form"), rows) : null,
    h("div", { class: "actions" }, submit, reason ? h("label", { for: reason.id, class: "sr-only" }, "Reason for rejecting") : null, reason, reject),
    error,
  );
  if (reject && reason) reject.addEventListener("click", () => void run(() => o.onReject(reason.value.trim()), reject));
  return form;
}
