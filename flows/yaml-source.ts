/**
 * YAML text → a tree that remembers where every value came from, so that validation can
 * point at the offending key or value (FILE:LINE:COL). Built on js-yaml's event stream,
 * which carries source offsets; js-yaml's own `load` would lose them.
 */
import { CORE_SCHEMA, EVENT_ID, getScalarValue, parseEvents, SCALAR_STYLE, YAMLException } from "js-yaml";
import type { Event, ScalarEvent } from "js-yaml";

export interface YScalar {
  readonly kind: "scalar";
  readonly pos: number;
  /** The resolved value: string, number, boolean or null (YAML 1.2 core schema). */
  readonly value: string | number | boolean | null;
  /** True when the scalar was plain (unquoted), where YAML 1.1 words like `yes` may hide. */
  readonly plain: boolean;
}
export interface YSeq {
  readonly kind: "seq";
  readonly pos: number;
  readonly items: readonly YNode[];
}
export interface YPair {
  readonly key: YScalar;
  readonly value: YNode;
}
export interface YMap {
  readonly kind: "map";
  readonly pos: number;
  readonly pairs: readonly YPair[];
}
export type YNode = YScalar | YSeq | YMap;

export interface ParsedYaml {
  readonly root: YNode | undefined;
  readonly problems: readonly { readonly pos: number; readonly message: string }[];
}

/** Nodes a document may expand to through aliases; beyond it is an alias bomb, not a flow. */
const MAX_EXPANDED_NODES = 200_000;
const MAX_DEPTH = 64;

export function parseYaml(text: string, filename: string): ParsedYaml {
  let events: Event[];
  try {
    events = parseEvents(text, { filename, maxDepth: MAX_DEPTH });
  } catch (e) {
    if (!(e instanceof YAMLException)) return { root: undefined, problems: [{ pos: -1, message: `YAML syntax: ${String(e)}` }] };
    return { root: undefined, problems: [syntaxProblem(text, e.reason, e.mark?.position ?? -1)] };
  }
  return new TreeBuilder(text, events).build();
}

/** js-yaml's complaint, reworded where it names its own internals or hides the likely mistake. */
function syntaxProblem(text: string, reason: string, pos: number): { pos: number; message: string } {
  if (reason === "deficient indentation") {
    // A quoted value or a [ ] / { } list runs on until a line that is indented less, or the end.
    if (pos >= 0 && text.slice(pos).trim() === "") {
      return { pos: text.trimEnd().length, message: "YAML syntax: the file ends inside a quoted value or a [ ] / { } list; is a closing quote, ] or } missing?" };
    }
    return { pos, message: "YAML syntax: this line is indented less than the quoted value or [ ] / { } list it continues; is a closing quote, ] or } missing?" };
  }
  if (reason.startsWith("nesting exceeded maxDepth")) return { pos, message: `YAML syntax: lists and maps are nested more than ${MAX_DEPTH} levels deep` };
  return { pos, message: `YAML syntax: ${reason}` };
}

class TreeBuilder {
  private i = 0;
  private readonly anchors = new Map<string, { node: YNode; size: number }>();
  private readonly problems: { pos: number; message: string }[] = [];
  private expanded = 0;
  private readonly reported = new WeakSet<YNode>();

  constructor(
    private readonly text: string,
    private readonly events: Event[],
  ) {}

  build(): ParsedYaml {
    let root: YNode | undefined;
    let docs = 0;
    while (this.i < this.events.length) {
      const ev = this.events[this.i++];
      if (ev?.type !== EVENT_ID.DOCUMENT) continue;
      docs++;
      const next = this.events[this.i];
      if (next === undefined || next.type === EVENT_ID.POP) {
        this.i++;
        continue;
      }
      const node = this.node().node;
      this.i++; // document pop
      if (docs === 1) root = node;
      else this.problems.push({ pos: startOf(node), message: "only one YAML document is allowed per file" });
      if (this.expanded > MAX_EXPANDED_NODES) break;
    }
    return { root, problems: this.problems };
  }

  /** `near`: where to locate an empty value, which has no place of its own (its list, or its key). */
  private node(near = -1): { node: YNode; size: number } {
    const ev = this.events[this.i++];
    if (ev === undefined) throw new Error("unexpected end of YAML events");
    let out: { node: YNode; size: number };
    switch (ev.type) {
      case EVENT_ID.SCALAR:
        out = { node: this.scalar(ev, near), size: 1 };
        break;
      case EVENT_ID.SEQUENCE: {
        const items: YNode[] = [];
        let size = 1;
        while (this.events[this.i]?.type !== EVENT_ID.POP) {
          const child = this.node(ev.start);
          items.push(child.node);
          size += child.size;
        }
        this.i++;
        out = { node: { kind: "seq", pos: ev.start, items }, size };
        break;
      }
      case EVENT_ID.MAPPING:
        out = this.mapping(ev.start);
        break;
      case EVENT_ID.ALIAS: {
        // anchorStart is just after the `*`; point at the `*`.
        const name = this.text.slice(ev.anchorStart, ev.anchorEnd);
        const target = this.anchors.get(name);
        if (target === undefined) {
          this.problems.push({ pos: ev.anchorStart - 1, message: `unknown alias *${name}` });
          return this.placeholder(ev.anchorStart - 1);
        }
        if (this.expanded > MAX_EXPANDED_NODES) return this.placeholder(ev.anchorStart - 1); // already reported
        this.expanded += target.size;
        if (this.expanded > MAX_EXPANDED_NODES) {
          this.problems.push({ pos: ev.anchorStart - 1, message: `aliases expand to more than ${MAX_EXPANDED_NODES} nodes; refusing to load (alias bomb?)` });
          return this.placeholder(ev.anchorStart - 1);
        }
        return target;
      }
      default:
        throw new Error(`unexpected YAML event ${ev.type}`);
    }
    this.expanded += 1;
    const anchored = ev as { anchorStart: number; anchorEnd: number };
    if (anchored.anchorStart >= 0) this.anchors.set(this.text.slice(anchored.anchorStart, anchored.anchorEnd), out);
    return out;
  }

  /** Stands in for an alias that was already reported, so that it is not reported again. */
  private placeholder(pos: number): { node: YNode; size: number } {
    const node: YScalar = { kind: "scalar", pos, value: null, plain: true };
    this.reported.add(node);
    return { node, size: 1 };
  }

  private mapping(pos: number): { node: YMap; size: number } {
    const pairs: YPair[] = [];
    const merges: YNode[] = [];
    const seen = new Set<string>();
    let size = 1;
    while (this.events[this.i]?.type !== EVENT_ID.POP) {
      const k = this.node(pos);
      const v = this.node(k.node.pos);
      size += k.size + v.size;
      if (k.node.kind !== "scalar") {
        this.problems.push({ pos: k.node.pos, message: "mapping keys must be plain values, not lists or maps" });
        continue;
      }
      const key = k.node;
      if (key.plain && key.value === "<<") {
        merges.push(v.node);
        continue;
      }
      const name = String(key.value);
      if (seen.has(name)) {
        this.problems.push({ pos: key.pos, message: `duplicate key "${name}"` });
        continue;
      }
      seen.add(name);
      pairs.push({ key: { ...key, value: name }, value: v.node });
    }
    this.i++;
    // YAML merge keys (`<<: *base`), as Go's yaml.v2 accepts them: explicit keys win.
    for (const m of merges) {
      const sources = m.kind === "seq" ? m.items : [m];
      for (const src of sources) {
        if (this.reported.has(src)) continue;
        if (src.kind !== "map") {
          this.problems.push({ pos: src.pos, message: "a merge key (<<) needs a map or a list of maps" });
          continue;
        }
        for (const p of src.pairs) {
          const name = String(p.key.value);
          if (!seen.has(name)) {
            seen.add(name);
            pairs.push(p);
          }
        }
      }
    }
    return { node: { kind: "map", pos, pairs }, size };
  }

  private scalar(ev: ScalarEvent, near: number): YScalar {
    const raw = getScalarValue(this.text, ev);
    const plain = ev.style === SCALAR_STYLE.PLAIN;
    const tag = ev.tagStart >= 0 ? this.text.slice(ev.tagStart, ev.tagEnd) : "";
    let value: YScalar["value"] = raw;
    if (tag === "" && plain) value = resolvePlain(raw);
    else if (tag !== "" && tag !== "!!str" && tag !== "!") value = resolvePlain(raw);
    // Quoted values are located at their opening quote, as a reader sees them.
    const quoted = ev.style === SCALAR_STYLE.SINGLE_QUOTED || ev.style === SCALAR_STYLE.DOUBLE_QUOTED;
    const pos = ev.valueStart < 0 ? near : quoted && ev.valueStart > 0 ? ev.valueStart - 1 : ev.valueStart;
    return { kind: "scalar", pos, value, plain };
  }
}

function resolvePlain(raw: string): YScalar["value"] {
  const v: unknown = CORE_SCHEMA.resolveImplicitScalarTag(raw).value;
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean" || v === null) return v;
  return raw;
}

export function startOf(n: YNode): number {
  return n.pos;
}

/** A plain JS value of a located node (maps become plain objects with null prototypes avoided). */
export function toPlain(n: YNode): unknown {
  switch (n.kind) {
    case "scalar":
      return n.value;
    case "seq":
      return n.items.map(toPlain);
    case "map": {
      const o: Record<string, unknown> = {};
      for (const p of n.pairs) {
        const k = String(p.key.value);
        if (k === "__proto__") continue; // never let a config key reach Object.prototype
        o[k] = toPlain(p.value);
      }
      return o;
    }
  }
}

export function describe(n: YNode): string {
  switch (n.kind) {
    case "scalar":
      if (n.value === null) return "nothing (null)";
      return typeof n.value === "string" ? `the text "${n.value.length > 40 ? n.value.slice(0, 40) + "…" : n.value}"` : `${typeof n.value} ${String(n.value)}`;
    case "seq":
      return "a list";
    case "map":
      return "a map";
  }
}
