/** The agent's side of HostCommands (agent/contract.ts): what the hub asks of the host's system. */
import type { HostCommands } from "./contract.js";
import { lsRemote } from "./ls-remote.js";
import { killOrphanGroup } from "./orphans.js";
import { runSystemCommand } from "./spawner.js";

export const hostCommands: HostCommands = {
  killTaskGroup: killOrphanGroup,
  system: runSystemCommand,
  lsRemote,
};
