/** Mutations of YAML text for the fuzz tests: each one a slip a person (or an attacker) makes. */
import { HOSTILE, type Rng } from "./prng.js";

const SCALARS = ["0", "-1", "1e309", "0x1f", "true", "false", "null", "~", "[]", "{}", "[1, [2, {a: b}]]", "{a: 1, b: [x]}", '""', "''", "!!binary aGk=", "*nope", "&a x", "|", ">-", "2001-12-14t21:59:43.10-05:00", ".nan", "-.inf", "'unterminated", '"\\q"', "3m", "99999999999999999999"];

function lines(text: string): string[] {
  return text.split("\n");
}

type Mutation = (text: string, rng: Rng) => string | Buffer;

const MUTATIONS: Readonly<Record<string, Mutation>> = {
  deleteLine(text, rng) {
    const l = lines(text);
    l.splice(rng.int(l.length), 1);
    return l.join("\n");
  },
  duplicateLine(text, rng) {
    const l = lines(text);
    const i = rng.int(l.length);
    l.splice(i, 0, l[i] ?? "");
    return l.join("\n");
  },
  swapLines(text, rng) {
    const l = lines(text);
    const i = rng.int(l.length);
    const j = rng.int(l.length);
    [l[i], l[j]] = [l[j] ?? "", l[i] ?? ""];
    return l.join("\n");
  },
  indent(text, rng) {
    const l = lines(text);
    const i = rng.int(l.length);
    const line = l[i] ?? "";
    const by = rng.pick([-4, -2, -1, 1, 2, 3, 8]);
    l[i] = by > 0 ? `${rng.bool(0.8) ? " ".repeat(by) : "\t"}${line}` : line.replace(new RegExp(`^ {0,${-by}}`), "");
    return l.join("\n");
  },
  flipScalar(text, rng) {
    const l = lines(text);
    const candidates = l.map((s, i) => ({ s, i })).filter(({ s }) => /:\s+\S/.test(s));
    if (candidates.length === 0) return text;
    const { s, i } = rng.pick(candidates);
    l[i] = s.replace(/(:\s+)(.*)$/, (_m, sep: string) => `${sep}${rng.pick(SCALARS)}`);
    return l.join("\n");
  },
  hostile(text, rng) {
    const l = lines(text);
    const candidates = l.map((s, i) => ({ s, i })).filter(({ s }) => /:\s+\S/.test(s));
    const h = rng.pick(HOSTILE);
    // Both as YAML would quote it and raw: the raw form tests the parser, the quoted one the checks.
    const v = rng.bool() ? JSON.stringify(h) : h;
    if (candidates.length > 0 && rng.bool(0.7)) {
      const { s, i } = rng.pick(candidates);
      l[i] = s.replace(/(:\s+)(.*)$/, (_m, sep: string) => `${sep}${v}`);
    } else {
      const i = rng.int(l.length);
      l.splice(i, 0, `${" ".repeat(rng.int(8))}${rng.bool() ? `${v}: ${v}` : `- ${v}`}`);
    }
    return l.join("\n");
  },
  truncate(text, rng) {
    const b = Buffer.from(text, "utf8");
    // Byte offsets, so a cut can land inside a multi-byte character.
    return b.subarray(0, rng.int(b.length + 1));
  },
  randomBytes(text, rng) {
    const b = Buffer.from(text, "utf8");
    const at = rng.int(b.length + 1);
    const junk = rng.bool(0.5) ? rng.bytes(rng.range(1, 16)) : Buffer.from(rng.text(8), "utf8");
    return rng.bool() ? Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]) : Buffer.concat([b.subarray(0, at), junk, b.subarray(Math.min(b.length, at + junk.length))]);
  },
  aliasBomb(text, rng) {
    // A billion-laughs fragment: a parser that expands aliases eagerly blows up here.
    const l = lines(text);
    const bomb = ["x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]", ...Array.from({ length: 8 }, (_, i) => `x${i + 1}: &a${i + 1} [*a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}]`)];
    l.splice(rng.int(l.length), 0, ...bomb);
    return l.join("\n");
  },
};

export const MUTATION_NAMES = Object.keys(MUTATIONS);

/** 1 to 3 mutations of `text`; the names of those applied, to say what broke. */
export function mutate(text: string, rng: Rng): { bytes: Buffer; applied: string[] } {
  let cur: string | Buffer = text;
  const applied: string[] = [];
  const n = rng.range(1, 3);
  for (let i = 0; i < n; i++) {
    const name = rng.pick(MUTATION_NAMES);
    const f = MUTATIONS[name] as Mutation;
    // Once bytes are not text any more, later text mutations see them decoded loosely.
    cur = f(typeof cur === "string" ? cur : cur.toString("utf8"), rng);
    applied.push(name);
  }
  return { bytes: typeof cur === "string" ? Buffer.from(cur, "utf8") : cur, applied };
}
