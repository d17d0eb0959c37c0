/**
 * Parsing the `$FLOE_OUTPUT` file a task writes: `key=value` lines whose pairs reach the
 * listeners of the task's event as environment variables (DESIGN §6.2, "outputs").
 */

export interface ParsedOutputs {
  readonly values: Readonly<Record<string, string>>;
  /** One message per ignored line, with its line number, for the task's log. */
  readonly warnings: readonly string[];
}

/** Keys become environment variable names, so they must be valid ones. */
const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Blank lines and `#` comments are skipped; the value is everything after the first `=`
 * (it may contain `=`); a later line for the same key wins, as in the env lists.
 */
export function parseOutputs(text: string): ParsedOutputs {
  // A null-prototype object: a key named `__proto__` must be a plain key, not a setter.
  const values: Record<string, string> = Object.create(null) as Record<string, string>;
  const warnings: string[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq === -1) {
      warnings.push(`FLOE_OUTPUT line ${i + 1} ignored: no '=' in ${JSON.stringify(clip(line))}`);
      return;
    }
    const key = line.slice(0, eq);
    if (!KEY.test(key)) {
      warnings.push(`FLOE_OUTPUT line ${i + 1} ignored: ${JSON.stringify(clip(key))} is not a valid name`);
      return;
    }
    values[key] = line.slice(eq + 1);
  });
  return { values: { ...values }, warnings };
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
