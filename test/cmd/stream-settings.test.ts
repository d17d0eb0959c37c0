import t from "tap";
import { parseByteSize } from "../../cmd/byte-size.js";
import { parseSettings } from "../../cmd/settings.js";

t.test("sizes as people write them", async (t) => {
  t.equal(parseByteSize("1GiB"), 1024 ** 3);
  t.equal(parseByteSize("512MiB"), 512 * 1024 ** 2);
  t.equal(parseByteSize("500MB"), 500 * 1000 ** 2);
  t.equal(parseByteSize("2g"), 2 * 1024 ** 3);
  t.equal(parseByteSize("1.5 GiB"), 1.5 * 1024 ** 3);
  t.equal(parseByteSize("1048576"), 1048576);
  for (const bad of ["", "GiB", "1 parsec", "-1MiB", "1e9"]) t.equal(parseByteSize(bad), undefined, `"${bad}" is not a size`);
});

t.test("the stream flags: defaults, values, environment, and clear refusals", async (t) => {
  t.same(parseSettings([], {}).stream, { maxBytes: 1024 ** 3, maxAgeMs: 7 * 86_400_000, replicas: 1 });
  t.same(parseSettings(["--stream-max-bytes=2GiB", "--stream-max-age=36h", "--stream-replicas=3"], {}).stream, { maxBytes: 2 * 1024 ** 3, maxAgeMs: 36 * 3_600_000, replicas: 3 });
  t.equal(parseSettings([], { FLOE_STREAM_REPLICAS: "5" }).stream.replicas, 5);
  t.throws(() => parseSettings(["--stream-max-bytes=10KiB"], {}), /--stream-max-bytes=10KiB: expected a size of at least 1MiB/);
  t.throws(() => parseSettings(["--stream-max-age=soon"], {}), /--stream-max-age=soon: expected a duration/);
  t.throws(() => parseSettings(["--stream-replicas=6"], {}), /expected 1 to 5/);
  t.throws(() => parseSettings(["--stream-replicas=2.5"], {}), /expected 1 to 5/);
});
