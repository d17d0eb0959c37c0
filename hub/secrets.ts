/**
 * The secrets of this host (common.secrets): read from their files or environment
 * variables at start and again on SIGHUP, handed to the tasks of flows that name them, and
 * masked in everything floe writes or shows. A value read once stays masked until the host
 * stops, also after a SIGHUP replaced it: a rotated-out value is still a secret.
 *
 * A secret that can not be read is not an error of the host: the task that needs it fails,
 * naming the secret and why (never the value).
 */
import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import type { SecretSource } from "../flows/model.js";
import { errorCode, errorMessage } from "../flows/errors.js";
import { Masker } from "./masker.js";

/** What a run's executor needs of the host's secrets. */
export interface TaskSecrets {
  /** `NAME=value` entries for a task, or the first secret that is missing and why. */
  resolve(names: readonly string[]): { readonly env: readonly string[] } | { readonly error: string };
  /** The text with every secret value of this host masked. */
  mask(text: string): string;
  /** The same for each value of a map (a task's outputs). */
  maskValues(values: Readonly<Record<string, string>>): Record<string, string>;
  /** A secret's value for floe itself (signing a notification), or undefined when missing. */
  value(name: string): string | undefined;
}

type Entry = { readonly value: string } | { readonly problem: string };

export class SecretStore implements TaskSecrets {
  private entries = new Map<string, Entry>();
  /** Every value ever read, for the masker. */
  private readonly seen = new Set<string>();
  private masker = new Masker([]);

  constructor(
    private readonly host: string,
    /** The environment secrets of `env:` are read from (a snapshot taken at start). */
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {}

  /** Reads every secret of `defs` (files relative to `baseDir`); replaces what was read before. */
  async load(defs: Readonly<Record<string, SecretSource>> | undefined, baseDir: string): Promise<{ readonly missing: readonly string[] }> {
    const next = new Map<string, Entry>();
    for (const [name, src] of Object.entries(defs ?? {})) next.set(name, await this.read(src, baseDir));
    for (const e of next.values()) if ("value" in e) this.seen.add(e.value);
    this.entries = next;
    this.masker = new Masker(this.seen);
    return { missing: [...next].filter(([, e]) => "problem" in e).map(([n, e]) => `${n} (${"problem" in e ? e.problem : ""})`) };
  }

  private async read(src: SecretSource, baseDir: string): Promise<Entry> {
    if ("env" in src) {
      const v = this.env[src.env];
      return v === undefined || v === "" ? { problem: `environment variable ${src.env} is not set on host ${this.host}` } : { value: v };
    }
    const path = isAbsolute(src.file) ? src.file : resolve(baseDir, src.file);
    try {
      // One trailing newline is what `echo x > file` adds, not part of the secret.
      const v = (await readFile(path, "utf8")).replace(/\r?\n$/, "");
      return v === "" ? { problem: `file ${path} is empty on host ${this.host}` } : { value: v };
    } catch (e) {
      return { problem: `file ${path} can not be read on host ${this.host} (${errorCode(e) ?? errorMessage(e)})` };
    }
  }

  resolve(names: readonly string[]): { readonly env: readonly string[] } | { readonly error: string } {
    const env: string[] = [];
    for (const name of names) {
      const e = this.entries.get(name);
      if (e === undefined) return { error: `secret ${name} is not defined on host ${this.host} (common.secrets of its config)` };
      if ("problem" in e) return { error: `secret ${name} is not available: ${e.problem}` };
      env.push(`${name}=${e.value}`);
    }
    return { env };
  }

  value(name: string): string | undefined {
    const e = this.entries.get(name);
    return e !== undefined && "value" in e ? e.value : undefined;
  }

  mask(text: string): string {
    return this.masker.mask(text);
  }

  maskValues(values: Readonly<Record<string, string>>): Record<string, string> {
    return this.masker.maskValues(values);
  }
}

/** No secrets (a host without common.secrets, tests): resolves none, masks nothing. */
export const NO_SECRETS: TaskSecrets = {
  resolve: (names) => (names.length === 0 ? { env: [] } : { error: `secret ${names[0] ?? ""} is not defined on this host` }),
  mask: (t) => t,
  maskValues: (v) => ({ ...v }),
  value: () => undefined,
};
