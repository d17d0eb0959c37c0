/**
 * Lua scripts on Redis: run by SHA (loaded again when the server lost them), and the
 * length-prefixed lists they pass ids in, so that no id can break a script.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** `<byte length>:<bytes>` per item; Lua reads it back with `unpack_list`. */
export function packList(items: readonly string[]): string {
  return items.map((s) => `${Buffer.byteLength(s, "utf8")}:${s}`).join("");
}

/** The inverse of packList, on the JavaScript side. */
export function unpackList(s: string): string[] {
  const buf = Buffer.from(s, "utf8");
  const out: string[] = [];
  let i = 0;
  while (i < buf.length) {
    const colon = buf.indexOf(0x3a, i);
    if (colon < 0) throw new Error("malformed packed list");
    const n = Number(buf.subarray(i, colon).toString("latin1"));
    if (!Number.isSafeInteger(n) || n < 0 || colon + 1 + n > buf.length) throw new Error("malformed packed list");
    out.push(buf.subarray(colon + 1, colon + 1 + n).toString("utf8"));
    i = colon + 1 + n;
  }
  return out;
}

/**
 * A script run by EVALSHA, loaded when the server does not know it (a new server, or one
 * restarted without its script cache). Callers that meet NOSCRIPT at the same time share
 * one SCRIPT LOAD, then run by SHA again: when many hosts' states in one process (or a host
 * with many calls in flight) first met a script together, each sent its whole text with
 * EVAL — at 500 simulated hosts a thousand EVALs of 10 KB scripts in the first second of
 * load, a fifth of a second of Redis's time and megabytes from each process.
 */
export class LuaScript {
  readonly sha: string;
  /** A SCRIPT LOAD in flight, per connection it was sent on. */
  private readonly loading = new WeakMap<Redis, Promise<unknown>>();
  constructor(
    readonly name: string,
    readonly lua: string,
  ) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!isNoScript(e)) throw e;
    }
    let load = this.loading.get(redis);
    if (load === undefined) {
      load = redis.script("LOAD", this.lua).finally(() => this.loading.delete(redis));
      this.loading.set(redis, load);
    }
    await load;
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      // Lost again meanwhile (a SCRIPT FLUSH, a restart): the text itself, as a last resort.
      if (!isNoScript(e)) throw e;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

function isNoScript(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith("NOSCRIPT");
}
