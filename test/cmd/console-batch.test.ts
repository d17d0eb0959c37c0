import t from "tap";
import { lineBatch } from "../../cmd/console-batch.js";

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test("lines of one turn are written together, in order, at the end of the turn", async (t) => {
  const writes: string[] = [];
  const b = lineBatch((text) => writes.push(text));
  b.line("a");
  b.line("b");
  t.same(writes, [], "nothing is written during the turn");
  await turn();
  t.same(writes, ["a\nb"], "one write, joined by newlines");
  b.line("c");
  await turn();
  t.same(writes, ["a\nb", "c"], "the next turn's lines in a write of their own");
});

t.test("flush writes at once; a flush with nothing queued writes nothing", async (t) => {
  const writes: string[] = [];
  const b = lineBatch((text) => writes.push(text));
  b.flush();
  b.line("x");
  b.flush();
  t.same(writes, ["x"]);
  await turn();
  t.same(writes, ["x"], "the scheduled flush finds nothing left");
});

t.test("a turn past 64 KiB of lines is written without waiting for its end", async (t) => {
  const writes: string[] = [];
  const b = lineBatch((text) => writes.push(text));
  const long = "y".repeat(1000);
  for (let i = 0; i < 70; i++) b.line(long);
  t.equal(writes.length, 1, "written once the queue passed 64 KiB");
  t.equal(writes[0]?.split("\n").length, 66, "66 lines of 1,001 characters pass 65,536");
  await turn();
  t.equal(writes.length, 2);
  t.equal(writes.join("\n").split("\n").length, 70, "every line once");
});
