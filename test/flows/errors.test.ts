/** The one error model: the message and the code of whatever was thrown, from any layer. */
import { readFile } from "node:fs/promises";
import t from "tap";
import { coerceError, errorCode, errorMessage, FloeError } from "../../flows/errors.js";
import { RedisUnavailableError } from "../../store/redis-state.js";

t.test("errorMessage: an Error's message, a string as it is, anything else as JSON or String()", async (t) => {
  t.equal(errorMessage(new Error("disk on fire")), "disk on fire");
  t.equal(errorMessage("plain words"), "plain words");
  t.equal(errorMessage({ why: "object" }), '{"why":"object"}');
  t.equal(errorMessage(42), "42");
  t.equal(errorMessage(null), "null");
  t.equal(errorMessage(undefined), "undefined");
  t.equal(errorMessage(10n), "10", "a BigInt does not make it throw");
  const cycle: { self?: unknown } = {};
  cycle.self = cycle;
  t.equal(errorMessage(cycle), "[object Object]", "nor does a cycle");
  t.equal(coerceError(cycle).message, errorMessage(cycle), "coerceError says the same");
  t.equal(coerceError(undefined).message, "undefined");
});

t.test("errorCode: a FloeError's code, a system error's code, else undefined", async (t) => {
  t.equal(errorCode(new FloeError("E_RUN_NOT_FOUND", "no run")), "E_RUN_NOT_FOUND");
  const enoent = await readFile("/nonexistent/floe").catch((e: unknown) => e);
  t.equal(errorCode(enoent), "ENOENT");
  t.equal(errorCode(Object.assign(new Error("numeric"), { code: 10059 })), undefined, "only string codes");
  t.equal(errorCode({ code: "ENOENT" }), undefined, "not an Error");
  t.equal(errorCode("ENOENT"), undefined);
});

t.test("a store's unavailable error is a FloeError: E_UNAVAILABLE, 503", async (t) => {
  const e = new RedisUnavailableError("cluster state unavailable: heartbeat failed", true);
  t.ok(e instanceof FloeError);
  t.equal(errorCode(e), "E_UNAVAILABLE");
  t.equal(e.status, 503);
  t.equal(e.name, "RedisUnavailableError");
  t.equal(e.maybeApplied, true);
});
