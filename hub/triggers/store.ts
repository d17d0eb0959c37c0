/**
 * Where triggers keep their state (last fires, poll baselines), and how they fire once per
 * cluster. An embedded host keeps files under its root and always fires; in a cluster the
 * state is shared (Redis) and each fire or poll is claimed, so exactly one host acts on it.
 */
import { dirname, relative } from "node:path";
import { ensureDir, readJsonFile, writeFileAtomic } from "../../store/atomic-file.js";

export interface TriggerStore {
  /** The JSON value saved under `path`, or undefined. */
  read(path: string): Promise<unknown>;
  write(path: string, value: unknown): Promise<void>;
  /** True for exactly one caller per key within `ttlMs`. */
  claim(key: string, ttlMs: number): Promise<boolean>;
  /** True when other hosts change the state too, so it must be read again before use. */
  readonly shared: boolean;
}

export class FileTriggerStore implements TriggerStore {
  readonly shared = false;
  read(path: string): Promise<unknown> {
    return readJsonFile(path);
  }
  async write(path: string, value: unknown): Promise<void> {
    await ensureDir(dirname(path));
    await writeFileAtomic(path, JSON.stringify(value, null, 1) + "\n");
  }
  async claim(): Promise<boolean> {
    return true;
  }
}

export interface SharedValues {
  getValue(key: string): Promise<string | undefined>;
  setValue(key: string, value: string): Promise<void>;
  claimTick(key: string, ttlMs: number): Promise<boolean>;
}

export class SharedTriggerStore implements TriggerStore {
  readonly shared = true;
  constructor(
    private readonly values: SharedValues,
    /** Paths are made relative to the host's root, so every host uses the same keys. */
    private readonly root: string,
  ) {}
  private key(path: string): string {
    return `trigger:${relative(this.root, path)}`;
  }
  async read(path: string): Promise<unknown> {
    const v = await this.values.getValue(this.key(path));
    return v === undefined ? undefined : (JSON.parse(v) as unknown);
  }
  write(path: string, value: unknown): Promise<void> {
    return this.values.setValue(this.key(path), JSON.stringify(value));
  }
  claim(key: string, ttlMs: number): Promise<boolean> {
    return this.values.claimTick(`trigger:${key}`, ttlMs);
  }
}
