/** The names earlier nodes' outputs get in a task's environment, and what happens when two meet. */
import t from "tap";
import { outputsEnv, outputVarName } from "../../hub/upstream-outputs.js";

t.test("the names: upper-cased, non-alphanumerics as _, the later of two wins", async (t) => {
  const r = outputsEnv([
    { node: "build.linux", outputs: { Version: "1", "x": "2" } },
    { node: "build-linux", outputs: { version: "3" } },
  ]);
  t.same(r.env, ["FLOE_OUT_BUILD_LINUX_VERSION=3", "FLOE_OUT_BUILD_LINUX_X=2"]);
  t.same(r.collisions, ["FLOE_OUT_BUILD_LINUX_VERSION is both build.linux's output Version and build-linux's output version; it holds build-linux's"]);
});

t.test("outputVarName", async (t) => {
  t.equal(outputVarName("unit-tests", "passed"), "FLOE_OUT_UNIT_TESTS_PASSED");
  t.equal(outputVarName("9lives", "_x"), "FLOE_OUT_9LIVES__X", "after the prefix a digit or _ needs no escaping");
  t.equal(outputVarName("café", "k"), "FLOE_OUT_CAF__K", "a letter outside A-Z is not alphanumeric in a variable name");
});
