import t from "tap";
import { parseOutputs } from "../../agent/outputs.js";

t.test("key=value lines", async (t) => {
  const r = parseOutputs("a=1\r\n\n  # comment\nb=x=y\n_c9=\na=2\nno-equals\n9x=1\n__proto__=p\n");
  t.same(r.values, { a: "2", b: "x=y", _c9: "", ["__proto__"]: "p" });
  t.equal(Object.getPrototypeOf(r.values), Object.prototype, "a plain object; __proto__ stayed a key");
  t.equal(r.values["__proto__"], "p");
  t.same(r.warnings, [
    `FLOE_OUTPUT line 7 ignored: no '=' in "no-equals"`,
    `FLOE_OUTPUT line 8 ignored: "9x" is not a valid name`,
  ]);
});

t.test("empty file", async (t) => {
  t.same(parseOutputs(""), { values: {}, warnings: [] });
});
