/**
 * Ids and names of flows and nodes, derived exactly as floe does (reference §1.4):
 * `Build Project` → id `build-project`; id `a-b` → name `a b`.
 */

export type IdResult = { readonly ok: true; readonly id: string; readonly name: string } | { readonly ok: false; readonly error: string };

function trimChars(s: string, chars: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && chars.includes(s[a] ?? "")) a++;
  while (b > a && chars.includes(s[b - 1] ?? "")) b--;
  return s.slice(a, b);
}

/** Characters an id may hold: it becomes a directory name, a NATS subject token and a Redis key part. */
const SAFE_ID = /^[a-z0-9_][a-z0-9_-]*$/;

export function deriveIdName(rawId: string, rawName: string): IdResult {
  const name = trimChars(rawName, " .-");
  let id = trimChars(rawId, " .-").toLowerCase();
  if (id === "" && name === "") return { ok: false, error: "id and name can not both be empty" };
  if (id === "") {
    id = name.trim().toLowerCase().replaceAll(" ", "-").replaceAll(".", "-");
  } else if (id.includes(" ") || id.includes(".")) {
    return { ok: false, error: `id "${rawId}" may not contain spaces or dots` };
  }
  const finalName = name === "" ? id.toLowerCase().replaceAll("-", " ") : name;
  if (!SAFE_ID.test(id)) {
    return { ok: false, error: `id "${id}" may only contain a-z, 0-9, "-" and "_" (it names files, subjects and keys)` };
  }
  return { ok: true, id, name: finalName };
}
