/**
 * A hub's own life, as Temporal's worker and BullMQ's close() keep theirs: a state that
 * only moves forward through guarded steps, so that nothing starts after the step that
 * stops it. `start()` twice, a trigger before the start or after the stop, each get a
 * clear error instead of a half-made host.
 *
 *   new ─start→ starting ─→ running ─stop→ stopping ─→ stopped
 *            └──(start failed)──────────────────┘
 */
import { FloeError } from "./errors.js";

export type HubState = "new" | "starting" | "running" | "stopping" | "stopped";

export class Lifecycle {
  private current: HubState = "new";

  get state(): HubState {
    return this.current;
  }

  /** Whether the hub takes work (triggers, dispatch): from the end of its start until its stop. */
  get running(): boolean {
    return this.current === "running";
  }

  /** new → starting; a second start is refused. */
  beginStart(): void {
    if (this.current !== "new") throw new FloeError("E_STOPPING", `this host was already started (it is ${this.current})`);
    this.current = "starting";
  }

  /** starting → running; false when a stop came first (the start must not go on). */
  started(): boolean {
    if (this.current !== "starting") return false;
    this.current = "running";
    return true;
  }

  /** Any → stopping; false when it was already stopping or stopped. */
  beginStop(): boolean {
    if (this.current === "stopping" || this.current === "stopped") return false;
    this.current = "stopping";
    return true;
  }

  stopped(): void {
    this.current = "stopped";
  }

  /** Throws the error a caller should see when the hub does not take new work now. */
  assertRunning(): void {
    if (this.current === "running") return;
    if (this.current === "new" || this.current === "starting") throw new FloeError("E_NOT_STARTED", "this host has not started yet; try again in a moment");
    throw new FloeError("E_STOPPING", "this host is not taking new runs (it is stopping)");
  }
}
