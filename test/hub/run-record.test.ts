/** A run's record and its nodes' status lines are read back from disk and from other hosts: checked, not trusted. */
import t from "tap";
import { parseRunRecord, parseStatusLine } from "../../hub/run-record.js";
import { config } from "../helpers/hub.js";

const flow = config("flows:\n  - id: a\n    triggers: [{name: go, type: data}]\n    tasks:\n      - {name: w, type: exec, listen: trigger.good, opts: {cmd: 'true'}}\n      - {name: m, class: merge, type: all, wait: [task.w.good]}\n").flows[0];
const record = { v: 1, ref: { flow: "a", ver: 1, run: "r1", adoptedBy: "h1" }, flow, trigger: { id: "go", type: "data", values: {} }, adoptedAt: 1, attempt: 1 };

t.test("a record as written reads back; a damaged one does not", async (t) => {
  const back = JSON.parse(JSON.stringify(record)) as unknown;
  t.same(parseRunRecord(back), back, "as written");
  const damaged = (f: (r: Record<string, unknown> & { flow: Record<string, unknown> }) => void): unknown => {
    const r = JSON.parse(JSON.stringify(record)) as Record<string, unknown> & { flow: Record<string, unknown> };
    f(r);
    return r;
  };
  t.equal(parseRunRecord(damaged((r) => (r.flow["tasks"] = [{ id: "w", class: "task" }]))), undefined, "a task without its fields");
  t.equal(parseRunRecord(damaged((r) => (r.flow["hostTags"] = "gpu"))), undefined, "host tags not a list");
  t.equal(parseRunRecord(damaged((r) => (r.flow["tasks"] = [{ id: "m", name: "m", type: "all", class: "merge", opts: {}, wait: "x" }]))), undefined, "a merge whose waits are not a list");
  t.equal(parseRunRecord(damaged((r) => (r["workspace"] = 7))), undefined, "a workspace not a path");
  t.equal(parseRunRecord(damaged((r) => (r.flow["ver"] = "1"))), undefined, "a version not a number");
});

t.test("status lines: each kind with its fields", async (t) => {
  const ev = { tag: "trigger.good", good: true, opts: {}, values: {} };
  t.ok(parseStatusLine({ t: "start", at: 1, attempt: 1, event: ev }));
  t.ok(parseStatusLine({ t: "done", at: 1, state: "good", tag: "task.w.good", exitCode: 0 }));
  t.equal(parseStatusLine({ t: "start", at: 1, attempt: 1 }), undefined, "a start without its event");
  t.equal(parseStatusLine({ t: "done", at: 1, state: "maybe" }), undefined, "a done with an unknown state");
  t.equal(parseStatusLine({ t: "values", at: 1, values: { a: 1 } }), undefined, "values that are not strings");
  t.equal(parseStatusLine({ t: "pgid", at: 1, pgid: "7" }), undefined, "a pgid not a number");
});
