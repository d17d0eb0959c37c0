// The API client: JSON in and out, the session cookie sent by the browser, the API's error
// shape turned into ApiError, and a 401 anywhere sending the user to the login page.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function createApi(base, hooks) {
  async function call(method, path, body, o = {}) {
    const signals = [AbortSignal.timeout(o.timeoutMs ?? 15_000)];
    if (o.signal) signals.push(o.signal);
    let res;
    try {
      res = await fetch(base + path, {
        method,
        credentials: "same-origin",
        cache: "no-store",
        headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      if (o.signal?.aborted) throw e;
      throw new ApiError(0, "E_NETWORK", "the host did not answer (is it down, or the connection lost?)");
    }
    let json;
    try {
      json = await res.json();
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = json && typeof json === "object" ? json.error : undefined;
      if (res.status === 401 && path !== "/login" && !o.quiet401) hooks.onUnauthorized();
      throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? `the host answered ${res.status}`, err?.details);
    }
    return json;
  }
  return {
    base,
    get: (path, o) => call("GET", path, undefined, o),
    post: (path, body, o) => call("POST", path, body ?? {}, o),
  };
}

/** Path segments are ids the API checks; encode them anyway so a strange one can not change the path. */
export const seg = (s) => encodeURIComponent(String(s));
