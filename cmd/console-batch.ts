/**
 * Task output lines on the host's console, written once per event-loop turn. Node writes
 * stdout synchronously when it is a pipe or a file (Linux), so a line per write was a
 * system call per task line — about 4 % of a busy host's time in the bench's profile. Lines
 * of one turn go out together, in order, at the end of the turn (or at once past 64 KiB,
 * so one chatty turn does not hold megabytes).
 */
const FLUSH_AT_CHARS = 64 * 1024;

export interface LineBatch {
  /** Queues one line (without its newline). */
  line(text: string): void;
  /** Writes what is queued now (before a stop, or before other output that must follow it). */
  flush(): void;
}

/** `write` takes the lines of a turn joined by newlines, without a final one (like `Out.out`). */
export function lineBatch(write: (text: string) => void): LineBatch {
  let queued: string[] = [];
  let chars = 0;
  let scheduled = false;
  const flush = (): void => {
    if (queued.length === 0) return;
    const text = queued.join("\n");
    queued = [];
    chars = 0;
    write(text);
  };
  return {
    line(text) {
      queued.push(text);
      chars += text.length + 1;
      if (chars >= FLUSH_AT_CHARS) return flush();
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        flush();
      });
    },
    flush,
  };
}
