/** Trigger test doubles: a clock that moves on command, a sink that records, a logger that is read back. */
import { pino, type Logger } from "pino";
import type { Clock, TimerHandle } from "../../hub/triggers/clock.js";
import type { TriggerSink, TriggerSinkRequest } from "../../hub/triggers/sink.js";

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** A clock that only moves when told; timers due on the way fire in order, each allowed to settle. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Pending[] = [];

  constructor(start: number | string) {
    this.t = typeof start === "number" ? start : Date.parse(start);
  }

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(p);
    return { cancel: () => void (this.timers = this.timers.filter((x) => x !== p)) };
  }

  /** Due times of the armed timers. */
  pending(): number[] {
    return this.timers.map((p) => p.at).sort((a, b) => a - b);
  }

  /** Moves to `target`, firing every timer due on the way and awaiting `settle` after each. */
  async advanceTo(target: number | string, settle: () => Promise<void>): Promise<void> {
    const to = typeof target === "number" ? target : Date.parse(target);
    await settle();
    for (;;) {
      const next = [...this.timers].sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined || next.at > to) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = Math.max(this.t, next.at);
      next.fn();
      await settle();
    }
    this.t = Math.max(this.t, to);
  }

  advance(ms: number, settle: () => Promise<void>): Promise<void> {
    return this.advanceTo(this.t + ms, settle);
  }

  /** Moves the clock without firing the timers due on the way: they fire late, at the next advance. */
  skip(ms: number): void {
    this.t += ms;
  }

  /** Jumps the clock and forgets every timer: the host was down. */
  jump(ms: number): void {
    this.t += ms;
    this.timers = [];
  }
}

/** The hub boundary, recorded: each trigger call, answered like a hub would (or refused). */
export class RecordingSink implements TriggerSink {
  readonly calls: TriggerSinkRequest[] = [];
  refuse: Error | undefined;

  async trigger(req: TriggerSinkRequest): Promise<unknown> {
    this.calls.push(req);
    if (this.refuse !== undefined) throw this.refuse;
    return { ref: { flow: req.flow, ver: req.ver, run: `run-${this.calls.length}` }, state: "pending" };
  }
}

export interface LogRecord {
  readonly level: number;
  readonly msg: string;
  readonly [k: string]: unknown;
}

/** A pino logger whose records can be read back (and checked for secrets). */
export function captureLog(): { log: Logger; records: LogRecord[]; text: () => string } {
  const records: LogRecord[] = [];
  const raw: string[] = [];
  const log = pino({ level: "debug" }, {
    write(s: string) {
      raw.push(s);
      records.push(JSON.parse(s) as LogRecord);
    },
  });
  return { log, records, text: () => raw.join("") };
}
