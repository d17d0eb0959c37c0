/**
 * A Lua script on a real redis-server (store/lua-script.ts): run by SHA; calls that meet a
 * server without it share one SCRIPT LOAD rather than each sending the script's text; and a
 * server that lost its scripts (SCRIPT FLUSH, as after a restart) still runs them.
 */
import { Redis } from "ioredis";
import t from "tap";
import { LuaScript } from "../../store/lua-script.js";
import { startRedis } from "../helpers/servers.js";

/** calls of one command since the server started, from INFO commandstats. */
async function calls(r: Redis, cmd: string): Promise<number> {
  const m = new RegExp(`^cmdstat_${cmd.replace("|", "\\|")}:calls=(\\d+)`, "m").exec(await r.info("commandstats"));
  return Number(m?.[1] ?? 0);
}

t.test("fifty calls at once on a server without the script: one SCRIPT LOAD, no EVAL; after a flush it runs again", async (t) => {
  const broker = await startRedis(t.testdir({}));
  t.teardown(() => broker.stop());
  const r = new Redis(broker.url);
  const admin = new Redis(broker.url);
  t.teardown(() => {
    r.disconnect();
    admin.disconnect();
  });
  const script = new LuaScript("incr", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
  const got = await Promise.all(Array.from({ length: 50 }, () => script.run(r, ["n"], [1])));
  t.same([...got].sort((a, b) => Number(a) - Number(b)), Array.from({ length: 50 }, (_, i) => i + 1), "every call ran once");
  t.equal(await calls(admin, "script|load"), 1, "one SCRIPT LOAD for all of them");
  t.equal(await calls(admin, "eval"), 0, "and no call sent the script's text");
  await admin.script("FLUSH");
  t.equal(await script.run(r, ["n"], [10]), 60, "after SCRIPT FLUSH it is loaded again and runs");
  t.equal(await calls(admin, "script|load"), 2, "with one more SCRIPT LOAD");
});
