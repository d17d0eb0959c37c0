/**
 * The evidence of the partition tests: a `resource-tags: [db]` flow whose task appends
 * `<ns> <host> <run> <attempt>` every 100 ms until the test releases that attempt (a file
 * `release-<run>-<attempt>` in `dir`), and the beats read back per run.
 */
import { join } from "node:path";
import { evidence } from "./cluster.js";

/** The flow `stamped`, as YAML lines to put under `flows:`. */
export function stampedFlow(dir: string): string {
  const ev = join(dir, "evidence.log");
  const beat = `while [ ! -f ${dir}/release-$FLOE_RUN_ID-$FLOE_ATTEMPT ]; do echo "$(date +%s%N) $FLOE_HOST $FLOE_RUN_ID $FLOE_ATTEMPT" >> ${ev}; sleep 0.1; done`;
  return `
  - id: stamped
    resource-tags: [db]
    on-host-loss: requeue
    triggers: [{name: go, type: data}]
    tasks:
      - {name: beat, type: exec, listen: trigger.good, opts: {shell: '${beat}'}}
`;
}

export interface Beat {
  readonly ns: bigint;
  readonly host: string;
  readonly attempt: number;
}

/** The beats of one run, in the order they were written. */
export function beats(ev: string, run: string): Beat[] {
  return evidence(ev)
    .map((l) => l.split(" "))
    .filter((f) => f.length === 4 && f[2] === run)
    .map((f) => ({ ns: BigInt(f[0] ?? "0"), host: f[1] ?? "", attempt: Number(f[3]) }));
}
