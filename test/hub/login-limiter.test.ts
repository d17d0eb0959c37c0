import t from "tap";
import { LoginLimiter } from "../../hub/api/auth.js";

t.test("ten failures within the window lock the key; the window passing or a success frees it", async (t) => {
  let now = 0;
  const l = new LoginLimiter(10, 60_000, () => now);
  for (let i = 0; i < 10; i++) {
    l.check("ada@1.2.3.4");
    l.fail("ada@1.2.3.4");
  }
  t.throws(() => l.check("ada@1.2.3.4"), { code: "E_RATE_LIMITED" });
  t.doesNotThrow(() => l.check("bob@1.2.3.4"), "another key is not affected");
  now = 60_001;
  t.doesNotThrow(() => l.check("ada@1.2.3.4"), "failures older than the window are forgotten");
  for (let i = 0; i < 10; i++) l.fail("bob@1.2.3.4");
  l.succeed("bob@1.2.3.4");
  t.doesNotThrow(() => l.check("bob@1.2.3.4"));
});

t.test("a spray of made-up names does not reset the key being guessed", async (t) => {
  let now = 0;
  const l = new LoginLimiter(10, 60_000, () => now);
  for (let i = 0; i < 10; i++) l.fail("ada@1.2.3.4");
  for (let i = 0; i < 9_000; i++) {
    now++;
    l.fail(`name${i}@5.6.7.8`);
  }
  now++;
  l.fail("ada@1.2.3.4"); // the guesser goes on
  for (let i = 0; i < 12_000; i++) {
    if (i % 1_000 === 0) l.fail("ada@1.2.3.4");
    now++;
    l.fail(`other${i}@5.6.7.8`);
  }
  t.throws(() => l.check("ada@1.2.3.4"), { code: "E_RATE_LIMITED" }, "still locked after 21,000 other names (the map holds at most 10,000)");
});
