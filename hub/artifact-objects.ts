/**
 * Where a host's artifacts are kept: its own content-addressed store (store/object-store.ts)
 * and, in a cluster, the shared bucket (store/nats-objects.ts). An object is in the bucket
 * before `keep` resolves, so the event that makes it known can reach a host that has to
 * fetch it; `localPath` fetches an object this host does not have.
 */
import type { Logger } from "pino";
import { retry } from "../store/backoff.js";
import type { RemoteObjects } from "../store/nats-objects.js";
import type { ObjectStore, StoredObject } from "../store/object-store.js";
import { coerceError, errorMessage, FloeError } from "./errors.js";

/** How long an upload is retried (NATS away) before the task that made the object ends bad. */
const UPLOAD_FOR_MS = 30_000;

export class ArtifactObjects {
  private readonly fetching = new Map<string, Promise<boolean>>();

  constructor(
    readonly local: ObjectStore,
    private readonly log: Logger,
    private readonly remote?: RemoteObjects,
  ) {}

  get clustered(): boolean {
    return this.remote !== undefined;
  }

  /** Stores the file durably here, and in the cluster's bucket. */
  async keep(path: string): Promise<StoredObject> {
    const o = await this.local.putFile(path);
    const remote = this.remote;
    if (remote !== undefined) {
      const deadline = Date.now() + UPLOAD_FOR_MS;
      await retry(() => remote.upload(o.sha256), {
        firstMs: 200,
        maxMs: 5000,
        retryIf: (_e, next) => Date.now() + next.delayMs < deadline,
        onRetry: (e, attempt) => {
          if (attempt === 1) this.log.warn({ err: coerceError(e), sha256: o.sha256 }, "could not upload an artifact to the cluster; retrying");
        },
      }).catch((e: unknown) => {
        throw new Error(`could not upload it to the cluster's artifact bucket: ${errorMessage(e)}`, { cause: e });
      });
    }
    return o;
  }

  /** The object's file on this host, fetched from the cluster when this host does not have it. */
  async localPath(sha256: string): Promise<string> {
    if (await this.local.has(sha256)) return this.local.pathOf(sha256);
    const remote = this.remote;
    if (remote !== undefined) {
      let p = this.fetching.get(sha256);
      if (p === undefined) {
        p = remote.download(sha256).finally(() => this.fetching.delete(sha256));
        this.fetching.set(sha256, p);
      }
      if (await p) return this.local.pathOf(sha256);
    }
    throw new FloeError("E_ARTIFACT_NOT_FOUND", `the object ${sha256} is not stored ${remote !== undefined ? "on this host nor in the cluster" : "on this host"} (pruned?)`);
  }
}
