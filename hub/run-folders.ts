/**
 * Where a run lives on disk besides its run files: the flow version's `flow.yml` snapshot
 * and run folders (made once per process, spread over the disk), and the run's workspace.
 * A run's workspace path is fixed on its record at activation (RunRecord.workspace), so a
 * reload that moves `workspace-root` changes only runs activated after it.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { HostCommands } from "../agent/contract.js";
import { expandPath } from "../flows/expand.js";
import type { Config, Flow } from "../flows/model.js";
import { flowToYaml } from "../flows/serialize.js";
import { ensureDir } from "../store/atomic-file.js";
import type { RunFiles } from "../store/run-files.js";
import type { RunRecord } from "./run-record.js";
import { FolderSpreader } from "./spread-folders.js";

interface Roots {
  readonly workspace: string;
  readonly store: string;
}

export class RunFolders {
  private roots: Roots;
  private readonly spreader: FolderSpreader;
  /** Flow versions whose run folders were made and spread by this process. */
  private readonly spread = new Set<string>();
  /** flow.yml written per flow version in this process, so each trigger does not rewrite it. */
  private readonly snapshots = new Map<string, string>();
  private readonly flowYaml = new WeakMap<Flow, string>();

  constructor(
    private readonly files: RunFiles,
    private readonly root: string,
    config: Config,
    commands: HostCommands,
    log: Logger,
  ) {
    this.roots = this.expandRoots(config);
    this.spreader = new FolderSpreader(commands, log);
  }

  /** `workspace-root` and `store-root` with `~` and `%tmp` expanded, once per config. */
  private expandRoots(c: Config): Roots {
    return {
      workspace: c.common.workspaceRoot !== undefined ? expandPath(c.common.workspaceRoot) : this.root,
      store: c.common.storeRoot !== undefined ? expandPath(c.common.storeRoot) : this.root,
    };
  }

  /** A new config: runs activated from now on use its roots. */
  reload(config: Config): void {
    this.roots = this.expandRoots(config);
  }

  get spacesRoot(): string {
    return join(this.roots.workspace, "spaces");
  }

  get cacheDir(): string {
    return join(this.roots.store, "fetch_cache");
  }

  /** The workspace a run has (fixed at activation), or would get if activated now. */
  workspaceOf(r: RunRecord): string {
    return r.workspace ?? join(this.spacesRoot, r.ref.flow, r.flow.reuseSpace ? "single" : r.ref.run);
  }

  /** Makes a run's workspace; reuse-space keeps its content between runs (floe wiped it, §9.18). */
  prepareWorkspace(r: RunRecord): void {
    mkdirSync(this.workspaceOf(r), { recursive: true, mode: 0o700 });
  }

  /**
   * Writes a flow version's `flow.yml` (and makes its run folders) unless this process wrote
   * the same text there already: every run of the version, adopted here or by another host,
   * would otherwise replace it (two syncs and a new file each).
   */
  async snapshotFlow(flow: Flow): Promise<void> {
    // A flow of the config is the same object run after run: its YAML is made once.
    let yaml = this.flowYaml.get(flow);
    if (yaml === undefined) this.flowYaml.set(flow, (yaml = flowToYaml(flow)));
    const key = `${flow.id}/${flow.ver}`;
    if (this.snapshots.get(key) === yaml) return;
    await this.files.writeFlowSnapshot(flow.id, flow.ver, yaml);
    await this.spreadRunFolders(flow.id, flow.ver);
    this.snapshots.set(key, yaml);
  }

  /**
   * Makes the folders a flow version's runs are made in (durably: a run is moved into
   * `active/`) and has them spread over the disk (spread-folders.ts), once per process.
   */
  private async spreadRunFolders(flow: string, ver: number): Promise<void> {
    const key = `${flow}/${ver}`;
    if (this.spread.has(key)) return;
    this.spread.add(key);
    const runs = [this.files.stateDir("pending", flow, ver), this.files.stateDir("active", flow, ver)];
    await Promise.all(runs.map((d) => ensureDir(d)));
    const spaces = join(this.spacesRoot, flow);
    mkdirSync(spaces, { recursive: true, mode: 0o700 });
    this.spreader.spread([...runs, spaces]);
  }
}
