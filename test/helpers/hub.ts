/** A real embedded hub in a temp dir, for tests: real processes, real files. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino, type Logger } from "pino";
import type { Test } from "tap";
import { hostCommands } from "../../agent/host-commands.js";
import { runTask } from "../../agent/run-task.js";
import type { TaskRunner } from "../../agent/contract.js";
import type { Config } from "../../flows/model.js";
import { parseConfig } from "../../flows/parse.js";
import { LocalClusterState, type ClusterState } from "../../hub/cluster-state.js";
import { Hub } from "../../hub/hub.js";
import type { RunEvent, RunSummary } from "../../hub/types.js";
import { LocalBus } from "../../store/bus.js";

export function config(text: string): Config {
  const res = parseConfig(text, "test.yml");
  if (res.config === undefined) throw new Error(`bad test config: ${JSON.stringify(res.diagnostics.filter((d) => d.severity === "error"))}`);
  return res.config;
}

export interface TestHub {
  readonly hub: Hub;
  readonly root: string;
  readonly events: RunEvent[];
  /** Waits for a run to end, failing the test after `ms`. */
  end(run: string, ms?: number): Promise<RunSummary>;
}

export interface TestHubOptions {
  readonly root?: string;
  readonly tags?: readonly string[];
  readonly slots?: number;
  readonly runTask?: TaskRunner;
  readonly host?: string;
  /** The cluster state; a fresh LocalClusterState by default. */
  readonly state?: ClusterState;
  /** The hub's logger; silent (or FLOE_TEST_LOG's level) by default. */
  readonly log?: Logger;
}

export async function startHub(t: Test, cfg: Config | string, o: TestHubOptions = {}): Promise<TestHub> {
  const root = o.root ?? mkdtempSync(join(tmpdir(), "floe-test-"));
  const bus = new LocalBus<RunEvent>();
  const events: RunEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const hub = new Hub({
    config: typeof cfg === "string" ? config(cfg) : cfg,
    configDir: root,
    root,
    host: o.host ?? "h1",
    tags: o.tags ?? [],
    slots: o.slots ?? 4,
    log: o.log ?? pino({ level: process.env["FLOE_TEST_LOG"] ?? "silent" }),
    runTask: o.runTask ?? runTask,
    commands: hostCommands,
    bus,
    state: o.state ?? new LocalClusterState(),
    killGraceMs: 500,
  });
  await hub.start();
  t.teardown(() => hub.stop(0).catch(() => undefined));
  return {
    hub,
    root,
    events,
    end: (run, ms = 60_000) => hub.waitForEnd(run, AbortSignal.timeout(ms)),
  };
}

/** Polls `cond` until it is true, failing after `ms`. Never a fixed sleep. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
