/**
 * Input for data forms (data triggers and data nodes): values checked against the form's
 * fields, so a bad post is refused with the field named and changes nothing.
 */
import type { Form, FormField } from "../flows/forms.js";
import { FloeError } from "./errors.js";

function coerce(f: FormField, v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") throw new FloeError("E_FORM_INVALID", `field "${f.id}" must be a single value, not a list or map`);
  const s = String(v);
  switch (f.kind) {
    case "bool":
      if (["true", "false"].includes(s.toLowerCase())) return s.toLowerCase();
      if (["yes", "on", "1"].includes(s.toLowerCase())) return "true";
      if (["no", "off", "0"].includes(s.toLowerCase())) return "false";
      throw new FloeError("E_FORM_INVALID", `field "${f.id}" must be true or false, not "${s}"`);
    case "number":
      if (s.trim() !== "" && Number.isFinite(Number(s))) return s.trim();
      if (s.trim() === "") return "";
      throw new FloeError("E_FORM_INVALID", `field "${f.id}" must be a number, not "${s}"`);
    case "choice":
      if (s === "" || (f.options ?? []).includes(s)) return s;
      throw new FloeError("E_FORM_INVALID", `field "${f.id}" must be one of ${(f.options ?? []).join(", ")}, not "${s}"`);
    case "text":
      if (s.length > 65536) throw new FloeError("E_FORM_INVALID", `field "${f.id}" is longer than 65536 characters`);
      return s;
  }
}

/** Checks posted values against a form; unknown fields are refused. Returns them as text. */
export function checkValues(form: Form | undefined, values: unknown): Record<string, string> {
  if (values === undefined || values === null) return {};
  if (typeof values !== "object" || Array.isArray(values)) throw new FloeError("E_FORM_INVALID", "values must be a map of field id to value");
  const out: Record<string, string> = {};
  const entries = Object.entries(values as Record<string, unknown>);
  if (form === undefined) {
    for (const [k, v] of entries) {
      if (v !== null && typeof v === "object") throw new FloeError("E_FORM_INVALID", `value "${k}" must be a single value`);
      if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k)) throw new FloeError("E_FORM_INVALID", `"${k}" is not a usable value name`);
      out[k] = String(v ?? "");
    }
    return out;
  }
  for (const [k, v] of entries) {
    const f = form.fields.find((x) => x.id === k);
    if (f === undefined) throw new FloeError("E_FORM_INVALID", `the form has no field "${k}" (fields: ${form.fields.map((x) => x.id).join(", ")})`);
    out[k] = coerce(f, v);
  }
  return out;
}

/** Fields still missing once `values` are in (required fields without a value or default). */
export function missingFields(form: Form, values: Readonly<Record<string, string>>): string[] {
  return form.fields.filter((f) => f.required && (values[f.id] ?? f.value ?? "") === "").map((f) => f.id);
}

/** Values with the form's defaults filled in. */
export function withDefaults(form: Form | undefined, values: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of form?.fields ?? []) if (f.value !== undefined) out[f.id] = f.value;
  return { ...out, ...values };
}
