/**
 * The archived runs of each flow version, in run id order (adoption order, as retention
 * counts them). Retention reads a version's archived runs at every run's end; finding them
 * by a scan and a sort of the whole run table cost about 3 % of a busy host's time.
 */
export class ArchivedIndex {
  private readonly byVersion = new Map<string, string[]>();

  add(flow: string, ver: number, run: string): void {
    const k = key(flow, ver);
    let list = this.byVersion.get(k);
    if (list === undefined) this.byVersion.set(k, (list = []));
    const i = firstNotBefore(list, run);
    if (list[i] !== run) list.splice(i, 0, run); // runs end in about their adoption order: mostly an append
  }

  remove(flow: string, ver: number, run: string): void {
    const k = key(flow, ver);
    const list = this.byVersion.get(k);
    if (list === undefined) return;
    const i = firstNotBefore(list, run);
    if (list[i] === run) list.splice(i, 1);
    if (list.length === 0) this.byVersion.delete(k);
  }

  /** Oldest first. */
  runs(flow: string, ver: number): readonly string[] {
    return this.byVersion.get(key(flow, ver)) ?? [];
  }
}

function key(flow: string, ver: number): string {
  return `${flow}\0${ver}`;
}

/** The index of the first id in sorted `list` that is not before `run`. */
function firstNotBefore(list: readonly string[], run: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as string) < run) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
