/**
 * Data forms (data triggers and data tasks): `opts.form: {title, fields: [{id, prompt,
 * type, value, required}]}`. floe decoded these keys case-insensitively (`Form`, `Fields`,
 * `Id` load too), so we do as well.
 */

export type FieldKind = "text" | "bool" | "number" | "choice";

export interface FormField {
  readonly id: string;
  readonly prompt: string;
  /** The type as written (an HTML input type in floe's UI). */
  readonly type: string;
  readonly kind: FieldKind;
  readonly value?: string;
  readonly required: boolean;
  readonly options?: readonly string[];
}

export interface Form {
  readonly title: string;
  readonly fields: readonly FormField[];
}

const TEXT_TYPES = ["string", "text", "textarea", "email", "url", "date", "password", "hidden", "tel"];
const BOOL_TYPES = ["bool", "boolean", "checkbox"];
const NUMBER_TYPES = ["int", "integer", "number"];
const CHOICE_TYPES = ["select", "choice"];
export const FIELD_TYPES: readonly string[] = [...TEXT_TYPES, ...BOOL_TYPES, ...NUMBER_TYPES, ...CHOICE_TYPES];

/** Case-insensitive key lookup in a plain object. */
export function getCI(o: unknown, key: string): unknown {
  if (o === null || typeof o !== "object" || Array.isArray(o)) return undefined;
  const rec = o as Record<string, unknown>;
  if (key in rec) return rec[key];
  const lk = key.toLowerCase();
  for (const k of Object.keys(rec)) if (k.toLowerCase() === lk) return rec[k];
  return undefined;
}

export function fieldKind(type: string): FieldKind | undefined {
  const t = type.toLowerCase();
  if (TEXT_TYPES.includes(t)) return "text";
  if (BOOL_TYPES.includes(t)) return "bool";
  if (NUMBER_TYPES.includes(t)) return "number";
  if (CHOICE_TYPES.includes(t)) return "choice";
  return undefined;
}

export interface FormProblem {
  /** Path inside opts.form, e.g. "fields[1].id". */
  readonly path: string;
  readonly message: string;
  readonly severity: "error" | "warning";
}

/** Reads a form from node opts; undefined when the opts have none. */
export function readForm(opts: unknown): { form?: Form; problems: FormProblem[] } {
  const problems: FormProblem[] = [];
  const raw = getCI(opts, "form");
  if (raw === undefined || raw === null) return { problems };
  if (typeof raw !== "object" || Array.isArray(raw)) {
    problems.push({ path: "", severity: "error", message: "form must be a map with title and fields" });
    return { problems };
  }
  const title = getCI(raw, "title");
  const rawFields = getCI(raw, "fields") ?? [];
  const fields: FormField[] = [];
  if (!Array.isArray(rawFields)) {
    problems.push({ path: "fields", severity: "error", message: "form fields must be a list" });
    return { problems };
  }
  const seen = new Set<string>();
  rawFields.forEach((f: unknown, i) => {
    const at = `fields[${i}]`;
    const id = getCI(f, "id");
    if (typeof id !== "string" || id.trim() === "") {
      problems.push({ path: at, severity: "error", message: "each form field needs an id" });
      return;
    }
    if (seen.has(id)) problems.push({ path: `${at}.id`, severity: "error", message: `form field id "${id}" is used twice` });
    seen.add(id);
    const type = String(getCI(f, "type") ?? "text");
    let kind = fieldKind(type);
    if (kind === undefined) {
      problems.push({ path: `${at}.type`, severity: "warning", message: `unknown form field type "${type}"; it is treated as text (known: ${FIELD_TYPES.join(", ")})` });
      kind = "text";
    }
    const value = getCI(f, "value");
    const options = getCI(f, "options");
    const prompt = getCI(f, "prompt");
    const required = getCI(f, "required");
    if (kind === "choice" && (!Array.isArray(options) || options.length === 0)) {
      problems.push({ path: `${at}.options`, severity: "error", message: `form field "${id}" of type ${type} needs a list of options` });
    }
    fields.push({
      id,
      prompt: typeof prompt === "string" && prompt !== "" ? prompt : id,
      type,
      kind,
      ...(value !== undefined && value !== null ? { value: String(value) } : {}),
      required: required === undefined ? true : required === true,
      ...(Array.isArray(options) ? { options: options.map(String) } : {}),
    });
  });
  return { form: { title: typeof title === "string" ? title : "", fields }, problems };
}
