import t from "tap";
import { decodeTime } from "ulid";
import { runIdFactory } from "../../hub/run-ids.js";

t.test("run ids are ULIDs: Crockford base32, time first, strictly increasing, unique", async (t) => {
  const next = runIdFactory();
  const before = Date.now();
  const ids = Array.from({ length: 20_000 }, () => next());
  const after = Date.now();
  for (const id of [ids[0], ids[ids.length - 1]]) {
    t.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const ms = decodeTime(id as string);
    t.ok(ms >= before && ms <= after, "the time part is the time it was made");
  }
  t.equal(new Set(ids).size, ids.length, "no id twice");
  t.ok(ids.every((id, i) => i === 0 || id > (ids[i - 1] as string)), "each sorts after the one before");
  // The random part uses every symbol: the page of random bytes is really drawn from.
  const symbols = new Set(ids.flatMap((id) => [...id.slice(10)]));
  t.equal(symbols.size, 32);
});

t.test("two factories do not share their randomness", async (t) => {
  const a = runIdFactory()();
  const b = runIdFactory()();
  t.not(a.slice(10), b.slice(10));
});
