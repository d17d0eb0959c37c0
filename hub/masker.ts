/**
 * Replaces secret values in text with `***`. Applied where text enters floe (a task's
 * output line, its outputs, a node's or run's reason), so that what is stored, published
 * and shown downstream never held the value.
 *
 * Besides the value itself it masks the forms a task is likely to print by accident: its
 * base64 (whole, padded, URL-safe, and the part that stays the same when the value sits
 * inside a longer base64 text, whatever its alignment), its URL encoding (both hex cases,
 * and `+` for spaces), its JSON string escape, and each line of a multi-line value. Task
 * output reaches the executor in whole lines (agent/process.ts joins the chunks of a line),
 * so a value written in two pieces is masked as one.
 */

/** The mask put in place of a secret. */
export const MASK = "***";

/** Values shorter than this are not masked: masking "a" would blank out every line. */
export const MIN_MASKED_LENGTH = 3;

/** Derived forms shorter than this are not masked (a 4-character base64 piece is too common). */
const MIN_FORM_LENGTH = 6;

/** The texts that stand for `value` in output, longest first. */
export function maskForms(value: string): string[] {
  if (value.length < MIN_MASKED_LENGTH) return [];
  const forms = new Set<string>([value]);
  const add = (f: string): void => {
    if (f.length >= MIN_FORM_LENGTH) forms.add(f);
  };
  const bytes = Buffer.from(value, "utf8");
  for (const b of [bytes, Buffer.concat([bytes, Buffer.from("\n")])]) {
    const b64 = b.toString("base64");
    add(b64);
    add(b.toString("base64url"));
    // Inside a longer text (`user:secret`, a JSON document) the value's base64 shifts by 0, 1
    // or 2 bytes; the characters that depend on its bytes alone are the same in every text.
    for (let k = 0; k < 3; k++) {
      const shifted = Buffer.concat([Buffer.alloc(k), b]).toString("base64");
      const middle = shifted.slice(Math.ceil((k * 8) / 6), Math.floor(((k + b.length) * 8) / 6));
      add(middle);
      add(middle.replaceAll("+", "-").replaceAll("/", "_"));
    }
  }
  const url = encodeURIComponent(value);
  add(url);
  add(url.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()));
  add(new URLSearchParams({ x: value }).toString().slice(2));
  add(JSON.stringify(value).slice(1, -1));
  for (const line of value.split(/\r?\n/)) if (line.trim().length >= MIN_FORM_LENGTH) forms.add(line);
  return [...forms].sort((a, b) => b.length - a.length);
}

export class Masker {
  private readonly re: RegExp | undefined;

  constructor(values: Iterable<string>) {
    const forms = new Set<string>();
    for (const v of values) for (const f of maskForms(v)) forms.add(f);
    // Longest first: a value that contains another is masked whole.
    const sorted = [...forms].sort((a, b) => b.length - a.length);
    this.re = sorted.length === 0 ? undefined : new RegExp(sorted.map(escapeRegExp).join("|"), "g");
  }

  /** True when there is nothing to mask (text passes through untouched). */
  get empty(): boolean {
    return this.re === undefined;
  }

  mask(text: string): string {
    if (this.re === undefined || text === "") return text;
    return text.replace(this.re, MASK);
  }

  /** Each value of a string map masked (a task's outputs). */
  maskValues(values: Readonly<Record<string, string>>): Record<string, string> {
    if (this.re === undefined) return { ...values };
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) out[k] = this.mask(v);
    return out;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
