/** The one id escaping behind Redis key parts and NATS subject tokens: stable, injective, bounded. */
import t from "tap";
import { idEscaper } from "../../store/id-escape.js";
import { subjectToken } from "../../store/nats-subjects.js";
import { keyPart } from "../../store/redis-keys.js";

t.test("outputs are pinned: Redis keys and JetStream stream names already stored depend on them", async (t) => {
  for (const [raw, want] of [
    ["run-01H_x", "run-01H_x"],
    ["a:b", "a%3Ab"],
    ["a.b", "a%2Eb"],
    ["", "%"],
    ["ü", "%FC"],
    ["😀", "%uD83D%uDE00"],
  ] as const) {
    t.equal(keyPart(raw), want, `key part of ${JSON.stringify(raw)}`);
    t.equal(subjectToken(raw), want, `subject token of ${JSON.stringify(raw)}`);
  }
  const long = "x".repeat(300);
  t.equal(keyPart(long), `${"x".repeat(64)}~2c19f09126b9b23510251aa9696686d0`, "a long key part keeps 64 characters and a hash");
  t.equal(subjectToken(long), `${"x".repeat(40)}~2c19f09126b9b23510251aa9696686d0`, "a long token keeps 40");
  t.equal(subjectToken(`${"é".repeat(30)}x`), `${"%E9".repeat(13)}~73ff5758502865f8f02ddb046bad1150`, "the cut never halves an escape");
});

t.test("each use's limits hold for escapes of every width", async (t) => {
  for (const unit of ["x", "é", "😀", ":", "."]) {
    for (let n = 0; n < 120; n++) {
      const raw = unit.repeat(n);
      t.ok(keyPart(raw).length <= 200 && subjectToken(raw).length <= 80, `${n} × ${unit}`);
      t.match(keyPart(raw), /^[A-Za-z0-9_%~-]+$/);
      t.match(subjectToken(raw), /^[A-Za-z0-9_%~-]+$/);
    }
  }
});

t.test("a use whose names must avoid a character the rule outputs is refused when it is made", async (t) => {
  t.throws(() => idEscaper({ maxLength: 80, keep: 40, avoid: ".%" }), /can not avoid "%"/);
  t.throws(() => idEscaper({ maxLength: 80, keep: 40, avoid: "~" }), /can not avoid "~"/);
  t.throws(() => idEscaper({ maxLength: 40, keep: 20, avoid: "." }), /exceeds maxLength/, "no room for the hash");
  const esc = idEscaper({ maxLength: 40, keep: 7, avoid: "/" });
  t.equal(esc("a/b"), "a%2Fb");
});
