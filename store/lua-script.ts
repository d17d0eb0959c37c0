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

/** A script run by EVALSHA, loaded again with EVAL when the server does not know it (after a restart). */
export class LuaScript {
  readonly sha: string;
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
      if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}
