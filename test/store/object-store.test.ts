/** The content-addressed object store on real files: durable placement, dedup, links refused, sweep. */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { ObjectStore } from "../../store/object-store.js";

const sha = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

t.test("an object lands at objects/<2 hex>/<2 hex>/<sha256>, whole and read-only", async (t) => {
  const dir = t.testdir({ "in.txt": "hello objects\n" });
  const store = new ObjectStore(join(dir, "root"));
  const o = await store.putFile(join(dir, "in.txt"));
  t.same(o, { sha256: sha("hello objects\n"), size: 14 });
  const path = join(dir, "root", "objects", o.sha256.slice(0, 2), o.sha256.slice(2, 4), o.sha256);
  t.equal(store.pathOf(o.sha256), path);
  t.equal(readFileSync(path, "utf8"), "hello objects\n");
  t.equal(statSync(path).mode & 0o777, 0o444, "objects are never changed in place");
  t.same(readdirSync(join(dir, "root", "objects", "tmp")), [], "no temporary file is left");
  t.ok(await store.has(o.sha256));
  t.notOk(await store.has(sha("other")));
  t.throws(() => store.pathOf("../../etc/passwd"), /not a SHA-256/);
});

t.test("the same bytes are stored once, and a second put renews the object's time", async (t) => {
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  const dir = t.testdir({});
  writeFileSync(join(dir, "a.bin"), big);
  writeFileSync(join(dir, "b.bin"), big);
  const store = new ObjectStore(join(dir, "root"));
  const a = await store.putFile(join(dir, "a.bin"));
  const old = new Date(Date.now() - 7200_000);
  utimesSync(store.pathOf(a.sha256), old, old);
  const b = await store.putFile(join(dir, "b.bin"));
  t.equal(a.sha256, b.sha256);
  t.equal(await store.usage(), big.length, "one copy");
  t.ok(statSync(store.pathOf(a.sha256)).mtimeMs > Date.now() - 60_000, "renewed: young again for the sweep");
  // Puts of the same bytes at once: one object, no leftovers.
  await Promise.all([1, 2, 3, 4].map(() => store.putFile(join(dir, "a.bin"))));
  t.equal(await store.usage(), big.length);
  t.same(readdirSync(join(dir, "root", "objects", "tmp")), []);
});

t.test("a link is never followed", async (t) => {
  const dir = t.testdir({ "secret.txt": "do not copy" });
  symlinkSync(join(dir, "secret.txt"), join(dir, "link"));
  const store = new ObjectStore(join(dir, "root"));
  await t.rejects(store.putFile(join(dir, "link")), { code: "ELOOP" });
  t.equal(await store.usage(), 0);
});

t.test("bytes that do not hash to the expected name are refused", async (t) => {
  const dir = t.testdir({ "x.txt": "x" });
  const store = new ObjectStore(join(dir, "root"));
  await t.rejects(store.putFile(join(dir, "x.txt"), sha("y")), /hash to .*: refused/);
  t.notOk(await store.has(sha("x")));
  t.notOk(await store.has(sha("y")));
});

t.test("sweep removes old unreferenced objects only, and leftovers of a crashed writer", async (t) => {
  const dir = t.testdir({ "keep.txt": "keep", "drop.txt": "drop", "young.txt": "young" });
  const store = new ObjectStore(join(dir, "root"));
  const keep = await store.putFile(join(dir, "keep.txt"));
  const drop = await store.putFile(join(dir, "drop.txt"));
  const young = await store.putFile(join(dir, "young.txt"));
  const old = new Date(Date.now() - 7200_000);
  utimesSync(store.pathOf(keep.sha256), old, old);
  utimesSync(store.pathOf(drop.sha256), old, old);
  // A temporary file of a writer that died (another pid), and one of this process.
  writeFileSync(join(dir, "root", "objects", "tmp", ".999999.1.part"), "torn");
  utimesSync(join(dir, "root", "objects", "tmp", ".999999.1.part"), old, old);
  const res = await store.sweep(new Set([keep.sha256]), 3600_000);
  t.same(res, { removed: 1, bytes: 4, young: 1 });
  t.ok(await store.has(keep.sha256), "referenced: kept however old");
  t.notOk(await store.has(drop.sha256), "old and unreferenced: removed");
  t.ok(await store.has(young.sha256), "unreferenced but young: kept");
  t.notOk(existsSync(join(dir, "root", "objects", "tmp", ".999999.1.part")), "a dead writer's temporary file is removed");
  t.notOk(existsSync(join(dir, "root", "objects", drop.sha256.slice(0, 2), drop.sha256.slice(2, 4))), "emptied folders go");
});
