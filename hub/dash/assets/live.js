// The live event stream (GET <api>/events, server-sent events). The browser reconnects by
// itself after a dropped connection and resumes with Last-Event-ID; when it gives up (the
// host answered with an error) we reopen it ourselves with backoff, resuming with ?after=.
// Either way the pages are told to "resync" once it is back, since a restarted host numbers
// its events afresh and a resume can not be trusted to have filled every hole.
// A tab left in the background lets go of its stream after a while (browsers allow only a
// few connections per host, shared by every tab) and catches up when it is shown again.

const KINDS = ["run", "node", "gap", "hello"];
const HIDDEN_GRACE_MS = 30_000;

function valid(type, d) {
  if (!d || typeof d !== "object" || d.v !== 1 || d.type !== type) return false;
  if (type === "run") return !!d.summary?.ref?.run;
  if (type === "node") return !!d.ref?.run && !!d.node?.id;
  return true;
}

export class Live {
  #url;
  #hooks;
  #es;
  #handlers = new Set();
  #statusHandlers = new Set();
  #status = "idle";
  #lastId;
  #failures = 0;
  #timer;
  #dropped = false;
  #running = false;
  #paused = false;
  #hiddenTimer;

  constructor(url, hooks) {
    this.#url = url;
    this.#hooks = hooks;
  }

  // Listened to while started only, so a stream made for one page leaves nothing behind.
  #onVisibility = () => {
    clearTimeout(this.#hiddenTimer);
    if (document.hidden) this.#hiddenTimer = setTimeout(() => this.#pause(), HIDDEN_GRACE_MS);
    else if (this.#paused) {
      this.#paused = false;
      if (!this.#running) return;
      this.#dropped = true;
      this.#open();
    }
  };

  #pause() {
    if (!this.#running || this.#paused) return;
    this.#paused = true;
    clearTimeout(this.#timer);
    this.#es?.close();
    this.#es = undefined;
    this.#setStatus("paused");
  }

  get status() {
    return this.#status;
  }

  start() {
    if (this.#running) return;
    this.#running = true;
    document.addEventListener("visibilitychange", this.#onVisibility);
    this.#open();
  }

  stop() {
    this.#running = false;
    this.#paused = false;
    document.removeEventListener("visibilitychange", this.#onVisibility);
    clearTimeout(this.#hiddenTimer);
    clearTimeout(this.#timer);
    this.#es?.close();
    this.#es = undefined;
    this.#setStatus("idle");
  }

  /** fn(event) for every run/node event, and {type: "resync"} when the page should reload its data. */
  on(fn) {
    this.#handlers.add(fn);
    return () => this.#handlers.delete(fn);
  }

  onStatus(fn) {
    this.#statusHandlers.add(fn);
    fn(this.#status);
    return () => this.#statusHandlers.delete(fn);
  }

  #setStatus(s) {
    if (s === this.#status) return;
    this.#status = s;
    for (const fn of this.#statusHandlers) fn(s);
  }

  #emit(ev) {
    for (const fn of [...this.#handlers]) {
      try {
        fn(ev);
      } catch (e) {
        console.error("floe: a live update failed", e);
      }
    }
  }

  #open() {
    const sep = this.#url.includes("?") ? "&" : "?";
    const url = this.#lastId !== undefined ? `${this.#url}${sep}after=${this.#lastId}` : this.#url;
    const es = new EventSource(url);
    this.#es = es;
    if (this.#status === "idle") this.#setStatus("connecting");
    es.onopen = () => {
      this.#failures = 0;
      this.#setStatus("live");
      if (this.#dropped) {
        this.#dropped = false;
        this.#emit({ type: "resync" });
      }
    };
    es.onerror = () => {
      if (this.#es !== es) return;
      this.#dropped = true;
      this.#setStatus("reconnecting");
      if (es.readyState === EventSource.CLOSED) this.#reopenLater();
    };
    for (const kind of KINDS) {
      es.addEventListener(kind, (m) => {
        if (m.lastEventId) this.#lastId = m.lastEventId;
        let d;
        try {
          d = JSON.parse(m.data);
        } catch {
          return;
        }
        if (!valid(kind, d)) return;
        if (kind === "gap") this.#emit({ type: "resync" });
        else if (kind !== "hello") this.#emit(d);
      });
    }
  }

  #reopenLater() {
    this.#es?.close();
    this.#es = undefined;
    if (!this.#running || this.#paused) return;
    this.#failures++;
    const ms = Math.min(1000 * 2 ** (this.#failures - 1), 15_000);
    this.#timer = setTimeout(async () => {
      if (!this.#running || this.#paused) return;
      // A closed stream may mean the session ended: ask, and let a 401 send the user to log in.
      const ok = await this.#hooks.stillAllowed();
      if (this.#paused) return;
      if (ok && this.#running) this.#open();
      else if (this.#running) this.#reopenLater();
    }, ms);
  }
}
