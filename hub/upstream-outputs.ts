/**
 * Every earlier node's outputs for a task about to start, as `FLOE_OUT_<NODE>_<KEY>`, as
 * GitHub Actions offers `needs.<job>.outputs`: the `key=value` lines a task wrote to
 * `$FLOE_OUTPUT` reach its event's listeners under their own names (task-request.ts), and
 * these reach every task that starts after the writer ended, in the same run attempt, also
 * past merges.
 */

/** The outputs one node recorded when it ended. */
export interface NodeOutputs {
  readonly node: string;
  readonly outputs: Readonly<Record<string, string>>;
}

export interface OutputsEnv {
  /** `FLOE_OUT_<NODE>_<KEY>=value` entries, values as the task wrote them. */
  readonly env: readonly string[];
  /** One message per name given by two outputs, for the starting task's log. */
  readonly collisions: readonly string[];
}

/** `FLOE_OUT_<NODE>_<KEY>`: node and key upper-cased, anything not a letter or digit as `_`. */
export function outputVarName(node: string, key: string): string {
  return `FLOE_OUT_${namePart(node)}_${namePart(key)}`;
}

function namePart(s: string): string {
  return s.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

/**
 * The variables of `written` (in the flow's order of nodes). Two outputs may get one name
 * (node `a` key `b_c` and node `a-b` key `c`; keys `v` and `V` of one node): the later in
 * that order wins — a rule that does not depend on which task happened to end first — and
 * the collision is reported so that the task's log says which value it got.
 */
export function outputsEnv(written: readonly NodeOutputs[]): OutputsEnv {
  const byName = new Map<string, { node: string; key: string; value: string }>();
  const collisions: string[] = [];
  for (const { node, outputs } of written) {
    for (const [key, value] of Object.entries(outputs)) {
      const name = outputVarName(node, key);
      const prev = byName.get(name);
      if (prev !== undefined) collisions.push(`${name} is both ${prev.node}'s output ${prev.key} and ${node}'s output ${key}; it holds ${node}'s`);
      byName.set(name, { node, key, value });
    }
  }
  return { env: [...byName].map(([name, o]) => `${name}=${o.value}`), collisions };
}
