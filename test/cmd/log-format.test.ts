/** The host's own log for people: one line per pino entry; auto chooses it only on a terminal. */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { chooseFormat, logFormatOf, prettyLine } from "../../cmd/log-format.js";

t.test("prettyLine: time, level, message, fields, an error's stack under it", async (t) => {
  t.equal(prettyLine('{"level":30,"time":"2026-11-22T11:18:25.364Z","flows":3,"msg":"config reloaded"}\n'), "2026-11-22T11:18:25.364Z INFO  config reloaded flows=3\n");
  t.equal(
    prettyLine('{"level":50,"time":"2026-11-22T11:18:25.364Z","conf":"/etc/my floe.yml","node":"a","err":{"type":"Error","message":"boom","stack":"Error: boom\\n    at x (y.js:1:2)"},"msg":"reload failed"}\n'),
    '2026-11-22T11:18:25.364Z ERROR reload failed conf="/etc/my floe.yml" node=a\n    Error: boom\n        at x (y.js:1:2)\n',
  );
  t.equal(prettyLine('{"level":40,"time":"2026-11-22T11:18:25.364Z","msg":"x"}', true), "2026-11-22T11:18:25.364Z \x1b[33mWARN \x1b[0m x\n", "the level coloured on a terminal");
  t.equal(prettyLine("not json\n"), "not json\n", "anything else as it is");
});

t.test("auto is pretty only on a terminal", async (t) => {
  const dir = t.testdir({});
  const fd = openSync(join(dir, "log"), "w");
  t.teardown(() => closeSync(fd));
  t.equal(chooseFormat("auto", fd), "json", "a file");
  t.equal(chooseFormat("pretty", fd), "pretty");
  t.equal(chooseFormat("json", fd), "json");
});

t.test("the flag's values", async (t) => {
  t.same(["auto", "json", "pretty", "xml", ""].map(logFormatOf), ["auto", "json", "pretty", undefined, undefined]);
});
