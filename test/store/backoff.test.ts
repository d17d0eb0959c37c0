/** The one backoff: delays double from the first up to the cap; retry stops on success or a final failure. */
import t from "tap";
import { backoffDelay, retry } from "../../store/backoff.js";

t.test("backoffDelay doubles from firstMs and stops at maxMs", async (t) => {
  const b = { firstMs: 200, maxMs: 5000 };
  t.same([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, b)), [200, 400, 800, 1600, 3200, 5000, 5000]);
  t.equal(backoffDelay(10_000, b), 5000, "a huge count is the cap, not Infinity or NaN");
  t.equal(backoffDelay(10_000, { firstMs: 1000, maxMs: Infinity }), 1000 * 2 ** 30, "uncapped: the exponent stops at 30");
  t.equal(backoffDelay(10_000, { firstMs: 0, maxMs: 5000 }), 0, "never NaN");
  t.equal(backoffDelay(-1, b), 200);
});

t.test("retry: backs off between failures and returns the first success", async (t) => {
  const seen: { attempt: number; delayMs: number }[] = [];
  const told: number[] = [];
  let calls = 0;
  const out = await retry(
    async () => {
      if (++calls <= 4) throw new Error(`fail ${calls}`);
      return "done";
    },
    { firstMs: 1, maxMs: 4, retryIf: (_e, next) => (seen.push({ ...next }), true), onRetry: (_e, attempt) => told.push(attempt) },
  );
  t.equal(out, "done");
  t.equal(calls, 5);
  t.same(seen, [
    { attempt: 1, delayMs: 1 },
    { attempt: 2, delayMs: 2 },
    { attempt: 3, delayMs: 4 },
    { attempt: 4, delayMs: 4 },
  ]);
  t.same(told, [1, 2, 3, 4], "onRetry hears of each retried failure");
});

t.test("retry: a failure retryIf refuses is thrown as it is, without a wait", async (t) => {
  const final = new Error("not worth retrying");
  let calls = 0;
  let told = 0;
  const started = Date.now();
  await t.rejects(
    retry(
      async () => {
        calls++;
        throw calls < 3 ? new Error("transient") : final;
      },
      { firstMs: 1, maxMs: 1, retryIf: (e) => e !== final, onRetry: () => told++ },
    ),
    final,
  );
  t.equal(calls, 3);
  t.equal(told, 2);
  t.ok(Date.now() - started < 1000);
  await t.rejects(retry(() => Promise.reject(final), { firstMs: 60_000, maxMs: 60_000, retryIf: () => false }), final, "the first failure, at once");
});
