/** Hands an operator's command to its handler; a request that failed is one line on stderr and exit 1. */
import type { Command, Parsed } from "./flags.js";
import { OpsError } from "./ops-client.js";
import { CANCEL, LOGS, PAUSE, RERUN, RESUME, RUNS, TRIGGER } from "./ops-commands.js";
import { logsCommand, triggerCommand } from "./ops-follow.js";
import { controlCommand, rerunCommand, runsCommand } from "./ops-runs.js";
import type { Out } from "./validate.js";

export async function opsCommand(cmd: Command, p: Parsed, io: Out, signal: AbortSignal): Promise<number> {
  try {
    switch (cmd) {
      case TRIGGER:
        return await triggerCommand(p, io, signal);
      case RUNS:
        return await runsCommand(p, io, process.stdout.isTTY === true);
      case LOGS:
        return await logsCommand(p, io, signal);
      case CANCEL:
        return await controlCommand("cancel", p, io);
      case PAUSE:
        return await controlCommand("pause", p, io);
      case RESUME:
        return await controlCommand("resume", p, io);
      case RERUN:
        return await rerunCommand(p, io);
      default:
        throw new Error(`floe: command ${cmd.name} has no handler`);
    }
  } catch (e) {
    if (!(e instanceof OpsError)) throw e;
    io.err(`floe ${cmd.name}: ${e.message}`);
    return 1;
  }
}
