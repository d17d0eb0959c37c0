/**
 * One error type with a stable code for everything that crosses an API. A task that fails
 * is not an error (it is a result); these are refusals and faults.
 *
 * It lives in flows/, the model layer, so that every layer can use it: cmd, hub and agent
 * import flows/ anyway, and this is the one module of flows/ that store/ may import (it
 * imports nothing itself). hub/errors.ts re-exports it.
 */
export type ErrorCode =
  | "E_BAD_REQUEST"
  | "E_UNAUTHORIZED"
  | "E_FORBIDDEN"
  | "E_NOT_FOUND"
  | "E_FLOW_NOT_FOUND"
  | "E_RUN_NOT_FOUND"
  | "E_NODE_NOT_FOUND"
  | "E_TRIGGER_NOT_FOUND"
  | "E_ARTIFACT_NOT_FOUND"
  | "E_NOT_A_DATA_NODE"
  | "E_DATA_NOT_ENABLED"
  | "E_FORM_INVALID"
  | "E_RUN_ENDED"
  | "E_QUEUE_FULL"
  | "E_RUN_NOT_ACTIVE"
  | "E_RUN_NOT_ENDED"
  | "E_RERUN_FROM_UNKNOWN"
  | "E_RERUN_FROM_TRIGGER"
  | "E_RERUN_FROM_UNREACHED"
  | "E_RERUN_NOTHING_FAILED"
  | "E_FLOW_INVALID"
  | "E_FLOW_FILE"
  | "E_STOPPING"
  | "E_NOT_STARTED"
  | "E_TOO_LARGE"
  | "E_RATE_LIMITED"
  | "E_SIGNATURE"
  | "E_UNAVAILABLE"
  | "E_INTERNAL";

const STATUS: Readonly<Record<ErrorCode, number>> = {
  E_BAD_REQUEST: 400,
  E_UNAUTHORIZED: 401,
  E_FORBIDDEN: 403,
  E_NOT_FOUND: 404,
  E_FLOW_NOT_FOUND: 404,
  E_RUN_NOT_FOUND: 404,
  E_NODE_NOT_FOUND: 404,
  E_TRIGGER_NOT_FOUND: 404,
  E_ARTIFACT_NOT_FOUND: 404,
  E_NOT_A_DATA_NODE: 409,
  E_DATA_NOT_ENABLED: 409,
  E_FORM_INVALID: 400,
  E_RUN_ENDED: 409,
  E_QUEUE_FULL: 429,
  E_RUN_NOT_ACTIVE: 409,
  E_RUN_NOT_ENDED: 409,
  E_RERUN_FROM_UNKNOWN: 400,
  E_RERUN_FROM_TRIGGER: 400,
  E_RERUN_FROM_UNREACHED: 409,
  E_RERUN_NOTHING_FAILED: 409,
  E_FLOW_INVALID: 422,
  E_FLOW_FILE: 422,
  E_STOPPING: 503,
  E_NOT_STARTED: 503,
  E_TOO_LARGE: 413,
  E_RATE_LIMITED: 429,
  E_SIGNATURE: 401,
  E_UNAVAILABLE: 503,
  E_INTERNAL: 500,
};

export class FloeError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions & { readonly details?: unknown },
  ) {
    super(message, options);
    this.name = "FloeError";
    this.status = STATUS[code];
    this.details = options?.details;
  }
  readonly details: unknown;
}

/** Whatever was thrown, as an Error (for logs under `err`, and to rethrow). */
export function coerceError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new Error(errorMessage(e));
}

/**
 * The message of whatever was thrown: an Error's message, a string as it is, anything else
 * as JSON where it has some (else as String() gives it). Never throws, also not for a
 * BigInt or a cyclic object.
 */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === "string") return e;
  try {
    const json: unknown = JSON.stringify(e);
    if (typeof json === "string") return json;
  } catch {
    // a BigInt or a cycle: String() still says something
  }
  return String(e);
}

/** The `code` of a FloeError, or of a Node.js system error (`ENOSPC`…); undefined otherwise. */
export function errorCode(e: unknown): string | undefined {
  if (e instanceof FloeError) return e.code;
  if (e instanceof Error && "code" in e && typeof e.code === "string") return e.code;
  return undefined;
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value ${JSON.stringify(x)}`);
}
