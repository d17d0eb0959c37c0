/**
 * The one escaping of user-supplied ids (flow, run, node and host ids, value keys, cluster
 * names) into a part of a name another system parses: a Redis key part (redis-keys.ts), a
 * NATS subject token or a JetStream name (nats-subjects.ts).
 *
 * One rule, injective, for any string:
 * - `[A-Za-z0-9_-]` stay as they are;
 * - any other UTF-16 code unit becomes `%HH` (below 0x100) or `%uHHHH`;
 * - the empty string becomes `%`;
 * - a result longer than the use's `maxLength` becomes its first `keep` characters (never
 *   cutting an escape), `~` and 32 hex digits of the SHA-256 of the raw string; `~` never
 *   appears in an escaped id (it would be `%7E`), so the two forms cannot collide.
 * So the output only ever holds `[A-Za-z0-9_%~-]`. Each use says which characters its
 * names must never hold and how long a part may be; `idEscaper` checks, once, that the
 * rule avoids them.
 *
 * Stored data depends on it (Redis keys, JetStream stream names): the outputs must not
 * change.
 */
import { createHash } from "node:crypto";

export interface IdEscapeLimits {
  /** Longest part kept readable; a longer one keeps a prefix and a hash. */
  readonly maxLength: number;
  /** How much of a too-long part is kept before `~` and the hash. */
  readonly keep: number;
  /** The characters this use's names must never hold in a part (its separators, wildcards…). */
  readonly avoid: string;
}

const SAFE = /^[A-Za-z0-9_-]$/;
/** Everything the rule can output. */
const OUTPUT = /^[A-Za-z0-9_%~-]$/;
/** `~` and the hash after the kept prefix. */
const HASH_LENGTH = 33;

/** The escaping for one use; throws at once if the rule could output a character it must avoid. */
export function idEscaper(limits: IdEscapeLimits): (raw: string) => string {
  const clash = [...limits.avoid].find((ch) => OUTPUT.test(ch));
  if (clash !== undefined) throw new Error(`id escaping can not avoid ${JSON.stringify(clash)}: its output holds [A-Za-z0-9_%~-]`);
  if (limits.keep + HASH_LENGTH > limits.maxLength) throw new Error(`id escaping: keep (${limits.keep}) + ${HASH_LENGTH} exceeds maxLength (${limits.maxLength})`);
  return (raw) => escapeId(raw, limits);
}

function escapeId(raw: string, { maxLength, keep }: IdEscapeLimits): string {
  if (raw === "") return "%";
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    const code = raw.charCodeAt(i);
    out += code < 0x100 ? `%${code.toString(16).toUpperCase().padStart(2, "0")}` : `%u${code.toString(16).toUpperCase().padStart(4, "0")}`;
    // Past the limit the rest is not needed: only the first `keep` characters are kept.
    if (out.length > maxLength) break;
  }
  if (out.length <= maxLength) return out;
  let cut = keep;
  // Back off to the start of an escape cut in half: `%` plus up to 5 characters.
  const pct = out.lastIndexOf("%", cut - 1);
  if (pct !== -1 && cut - pct < (out[pct + 1] === "u" ? 6 : 3)) cut = pct;
  const hash = createHash("sha256").update(raw, "utf16le").digest("hex").slice(0, 32);
  return `${out.slice(0, cut)}~${hash}`;
}
