/**
 * The host's secrets as `floe serve` and `floe run` load them: from a snapshot of the
 * environment taken once, and with the variables that hold secrets taken out of the
 * environment the host's tasks inherit. Without that, a secret given as `{env: VAR}` would
 * reach every task of every flow through the host's environment, not only the flows that
 * name it.
 */
import type { Logger } from "pino";
import type { Config } from "../flows/model.js";
import { SecretStore } from "../hub/secrets.js";

const startEnv: Readonly<Record<string, string | undefined>> = { ...process.env };

export async function loadHostSecrets(store: SecretStore | undefined, host: string, config: Config, configDir: string, log: Logger): Promise<SecretStore> {
  const s = store ?? new SecretStore(host, startEnv);
  const { missing } = await s.load(config.common.secrets, configDir);
  for (const src of Object.values(config.common.secrets ?? {})) {
    if ("env" in src) delete process.env[src.env];
  }
  for (const m of missing) log.warn({ secret: m }, "a secret of common.secrets can not be read; tasks that need it fail");
  return s;
}
