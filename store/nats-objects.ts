/**
 * The cluster's copy of artifacts: a JetStream object store bucket (`@nats-io/obj`) named by
 * store/nats-subjects.ts, one entry per object, named by its SHA-256. A host uploads each
 * object it made (unless the bucket has it, recently enough), so any host can fetch what
 * another made; a host that needs an object it does not have downloads it into its own
 * store, checking the bytes against the name.
 *
 * The bucket's entries expire (its TTL, JetStream max_age): `ttlMs` is chosen by the caller
 * (twice the runs' retention, cmd/wiring.ts) and an upload renews an entry older than
 * `refreshAfterMs`, so an object a new run references outlives that run's retention.
 * Checked against nats-server 2.9 (object stores need 2.6.2+).
 */
import { createReadStream, createWriteStream, mkdirSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { Objm, StorageType, type ObjectStore as NatsObjectStore } from "@nats-io/obj";
import type { NatsHandle } from "./nats-connect.js";
import type { ObjectStore } from "./object-store.js";

export interface RemoteObjectsOptions {
  /** How long the bucket keeps an entry. */
  readonly ttlMs: number;
  /** An upload of bytes the bucket has replaces an entry older than this. */
  readonly refreshAfterMs: number;
  /** Copies a NATS cluster keeps (1 to 5). @defaultValue 1 */
  readonly replicas?: number;
}

/** Where objects of other hosts come from, and where this host's go. */
export interface RemoteObjects {
  /** Uploads the local object unless the bucket has it (fresh enough). */
  upload(sha256: string): Promise<void>;
  /** Downloads an object into the local store; false when the bucket does not have it. */
  download(sha256: string): Promise<boolean>;
}

let counter = 0;

export class NatsObjects implements RemoteObjects {
  private bucket: Promise<NatsObjectStore> | undefined;

  constructor(
    private readonly nats: NatsHandle,
    private readonly local: ObjectStore,
    private readonly o: RemoteObjectsOptions,
  ) {}

  /** Opens (or creates) the bucket; again on the next call after a failure. */
  private open(): Promise<NatsObjectStore> {
    this.bucket ??= new Objm(this.nats.nc)
      .create(this.nats.names.objects, {
        description: `floe artifacts of cluster ${this.nats.names.cluster}`,
        storage: StorageType.File,
        ttl: Math.round(this.o.ttlMs * 1e6),
        replicas: this.o.replicas ?? 1,
      })
      .catch((e: unknown) => {
        this.bucket = undefined;
        throw new Error(`can not open the artifact bucket ${this.nats.names.objects} on NATS at ${this.nats.url}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      });
    return this.bucket;
  }

  async upload(sha256: string): Promise<void> {
    const b = await this.open();
    const info = await b.info(sha256);
    if (info !== null && !info.deleted && Date.now() - Date.parse(info.mtime) < this.o.refreshAfterMs) return;
    const rs = Readable.toWeb(createReadStream(this.local.pathOf(sha256))) as unknown as ReadableStream<Uint8Array>;
    await b.put({ name: sha256, description: "floe artifact" }, rs);
  }

  async download(sha256: string): Promise<boolean> {
    if (await this.local.has(sha256)) return true;
    const b = await this.open();
    const got = await b.get(sha256);
    if (got === null) return false;
    const dir = join(this.local.dir, "tmp");
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `.${process.pid}.dl${++counter}.part`);
    try {
      await pipeline(Readable.fromWeb(got.data as unknown as WebReadableStream<Uint8Array>), createWriteStream(tmp, { mode: 0o600 }) as Writable);
      // Resolves to null or undefined when the bytes arrived whole (their digest checked by the library).
      const err = await got.error;
      if (err instanceof Error) throw err;
      // Into the store as any object: hashed again (refused if the bytes are not what the name says), synced, renamed.
      await this.local.putFile(tmp, sha256);
      return true;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }
}
