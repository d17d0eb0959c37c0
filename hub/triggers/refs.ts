/**
 * Git ref names as triggers see them: what a ref is (branch, tag, pull request), whether it
 * matches a `refs` pattern, and the per-trigger state files. Shared by webhooks and poll-git
 * so both give a run the same values for the same push.
 */
import { join } from "node:path";

export type RefInfo =
  | { readonly kind: "branch"; readonly name: string }
  | { readonly kind: "tag"; readonly name: string }
  | { readonly kind: "pull"; readonly name: string }
  | { readonly kind: "other" };

/** floe's rules (reference §2 poll-git): heads → branch, tags → tag (`^{}` stripped), pull/pull-requests → pull. */
export function parseRef(ref: string): RefInfo {
  if (ref.startsWith("refs/heads/")) return { kind: "branch", name: ref.slice("refs/heads/".length) };
  if (ref.startsWith("refs/tags/")) return { kind: "tag", name: stripPeel(ref.slice("refs/tags/".length)) };
  const pull = /^refs\/(?:pull|pull-requests)\/(\d+)\//.exec(ref);
  if (pull?.[1] !== undefined) return { kind: "pull", name: pull[1] };
  return { kind: "other" };
}

export function stripPeel(name: string): string {
  return name.endsWith("^{}") ? name.slice(0, -3) : name;
}

/** The run values that name a ref: `branch`, `tag` or `pull`, as floe's poll-git gave them. */
export function refValues(ref: string): { branch?: string; tag?: string; pull?: string } {
  const r = parseRef(ref);
  switch (r.kind) {
    case "branch":
      return { branch: r.name };
    case "tag":
      return { tag: r.name };
    case "pull":
      return { pull: r.name };
    case "other":
      return {};
  }
}

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (const ch of glob) {
    if (ch === "*") re += ".*";
    else if (ch === "?") re += ".";
    else re += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether `ref` matches one of `patterns`, the way `git ls-remote <patterns>` matches, so a
 * pattern means the same in a git-push and a poll-git trigger: `*` matches anything
 * (slashes too: `refs/heads/*` covers `feature/x`), `?` one character; a pattern that does
 * not start with `refs/` matches whole trailing path components (`main` ≈ `refs/heads/main`).
 * No patterns: everything matches.
 */
export function refMatches(ref: string, patterns: readonly string[]): boolean {
  if (patterns.length === 0) return true;
  return patterns.some((p) => {
    const re = globToRegExp(p);
    if (re.test(ref)) return true;
    if (p.startsWith("refs/")) return false;
    const parts = ref.split("/");
    for (let i = 1; i < parts.length; i++) if (re.test(parts.slice(i).join("/"))) return true;
    return false;
  });
}

/** `opts.refs` as a list (a string or a list of strings); anything else is no filter. */
export function refPatterns(v: unknown): string[] {
  if (typeof v === "string") return v.trim() === "" ? [] : [v.trim()];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string" && x.trim() !== "").map((x) => x.trim());
  return [];
}

/** Where a trigger keeps its state: `<root>/triggers/<flow>/<trigger>.<what>.json`. */
export function triggerStatePath(root: string, flow: string, trigger: string, what: "refs" | "last"): string {
  return join(root, "triggers", flow, `${trigger}.${what}.json`);
}
