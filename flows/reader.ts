/**
 * Reads located YAML maps against the key table of spec.ts: checks each value's type,
 * warns about unknown keys (with a "did you mean"), reports missing required keys, and
 * hands back plain values with their places. A value of the wrong type is reported and
 * left out, so one mistake produces one message.
 */
import { parseDuration } from "./duration.js";
import { didYouMean, type Diagnostics } from "./diagnostics.js";
import { SPECS, type KeyKind, type SpecName } from "./spec.js";
import { describe, toPlain, type YMap, type YNode } from "./yaml-source.js";

export interface Field<T> {
  readonly value: T;
  /** Offset of the value in the source. */
  readonly pos: number;
  /** Offset of the key in the source. */
  readonly keyPos: number;
  readonly node: YNode;
}

export class ReadMap {
  constructor(
    readonly pos: number,
    private readonly fields: ReadonlyMap<string, Field<unknown>>,
    private readonly rejected: ReadonlySet<string> = new Set(),
  ) {}
  has(key: string): boolean {
    return this.fields.has(key);
  }
  /** True when the key was written but its value was rejected (and already reported). */
  invalid(key: string): boolean {
    return this.rejected.has(key);
  }
  field(key: string): Field<unknown> | undefined {
    return this.fields.get(key);
  }
  get<T>(key: string): T | undefined {
    return this.fields.get(key)?.value as T | undefined;
  }
  posOf(key: string): number {
    return this.fields.get(key)?.pos ?? this.pos;
  }
  keyPosOf(key: string): number {
    return this.fields.get(key)?.keyPos ?? this.pos;
  }
}

const YAML11_TRUE = new Set(["yes", "Yes", "YES", "on", "On", "ON", "y", "Y"]);
const YAML11_FALSE = new Set(["no", "No", "NO", "off", "Off", "OFF", "n", "N"]);

export class Reader {
  constructor(readonly d: Diagnostics) {}

  /** Reads `node` as a map of the given spec. `where` names it in messages ("flow build"). */
  map(node: YNode | undefined, spec: SpecName, where: string): ReadMap | undefined {
    if (node === undefined) return undefined;
    if (node.kind !== "map") {
      if (node.kind === "scalar" && node.value === null) return new ReadMap(node.pos, new Map());
      this.d.error(node.pos, `${where} must be a map of keys, not ${describe(node)}`);
      return undefined;
    }
    return this.readPairs(node, spec, where);
  }

  private readPairs(node: YMap, spec: SpecName, where: string): ReadMap {
    const keys = SPECS[spec];
    const out = new Map<string, Field<unknown>>();
    const rejected = new Set<string>();
    for (const { key, value } of node.pairs) {
      const name = String(key.value);
      const ks = keys[name];
      if (ks === undefined) {
        this.d.warn(key.pos, `unknown key "${name}" in ${where}${didYouMean(name, Object.keys(keys))}; it is ignored`);
        continue;
      }
      if (value.kind === "scalar" && value.value === null) continue; // `key:` with no value = absent, as floe
      const v = this.value(value, ks.kind, `"${name}" in ${where}`);
      if (v !== undefined) out.set(name, { value: v, pos: value.pos, keyPos: key.pos, node: value });
      else rejected.add(name);
    }
    for (const [name, ks] of Object.entries(keys)) {
      if (ks.required === true && !out.has(name) && !node.pairs.some((p) => p.key.value === name)) {
        this.d.error(node.pos, `${where} needs the key "${name}"`);
      }
    }
    return new ReadMap(node.pos, out, rejected);
  }

  /** A checked plain value, or undefined (and a reported error). */
  value(n: YNode, kind: KeyKind, what: string): unknown {
    switch (kind.t) {
      case "string":
        if (n.kind !== "scalar") return this.bad(n, what, "a text value");
        return String(n.value);
      case "int": {
        if (n.kind !== "scalar" || typeof n.value !== "number" || !Number.isInteger(n.value)) return this.bad(n, what, "a whole number");
        if (kind.min !== undefined && n.value < kind.min) {
          this.d.error(n.pos, `${what} must be at least ${kind.min}, not ${n.value}`);
          return undefined;
        }
        return n.value;
      }
      case "bool":
        if (n.kind === "scalar") {
          if (typeof n.value === "boolean") return n.value;
          if (n.plain && typeof n.value === "string" && YAML11_TRUE.has(n.value)) return true;
          if (n.plain && typeof n.value === "string" && YAML11_FALSE.has(n.value)) return false;
        }
        return this.bad(n, what, "true or false");
      case "duration": {
        const ms = n.kind === "scalar" ? parseDuration(n.value) : undefined;
        if (ms === undefined) {
          this.d.error(n.pos, `${what} must be a positive duration such as 90s, 15m or 2h, not ${describe(n)}`);
          return undefined;
        }
        return ms;
      }
      case "enum": {
        if (n.kind !== "scalar") return this.bad(n, what, `one of ${kind.values.join(", ")}`);
        const s = String(n.value);
        if (!kind.values.includes(s)) {
          this.d.error(n.pos, `${what} must be one of ${kind.values.join(", ")}, not "${s}"${didYouMean(s, kind.values)}`);
          return undefined;
        }
        return s;
      }
      case "strings": {
        if (n.kind !== "seq") return this.bad(n, what, "a list of text values");
        const out: string[] = [];
        for (const item of n.items) {
          if (item.kind !== "scalar" || item.value === null) this.bad(item, `each entry of ${what}`, "a text value");
          else out.push(String(item.value));
        }
        return out;
      }
      case "ints": {
        if (n.kind !== "seq") return this.bad(n, what, "a list of whole numbers");
        const out: number[] = [];
        for (const item of n.items) {
          if (item.kind !== "scalar" || typeof item.value !== "number" || !Number.isInteger(item.value) || item.value < 0 || item.value > 255) {
            this.d.error(item.pos, `each entry of ${what} must be an exit code, a whole number from 0 to 255, not ${describe(item)}`);
          } else out.push(item.value);
        }
        return out;
      }
      case "map":
        if (n.kind !== "map") return this.bad(n, what, "a map of keys");
        return toPlain(n);
      case "object":
        if (n.kind !== "map") return this.bad(n, what, "a map of keys");
        return n;
      case "list":
        if (n.kind !== "seq") return this.bad(n, what, "a list");
        return n;
      case "items": {
        if (n.kind === "scalar" && n.value === "artifacts") return "artifacts";
        if (n.kind !== "seq") return this.bad(n, what, `"artifacts" or a list of values`);
        const out: string[] = [];
        for (const item of n.items) {
          if (item.kind !== "scalar" || item.value === null) this.bad(item, `each entry of ${what}`, "a text value or a number");
          else out.push(String(item.value));
        }
        if (n.items.length === 0) this.d.error(n.pos, `${what} is an empty list: the task would never run; list at least one value`);
        return out;
      }
    }
  }

  private bad(n: YNode, what: string, want: string): undefined {
    this.d.error(n.pos, `${what} must be ${want}, not ${describe(n)}`);
    return undefined;
  }
}
