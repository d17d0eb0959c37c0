/**
 * Run ids: ULIDs (time-ordered, so listing by id is listing by adoption), monotonic within a
 * millisecond. The ulid package draws its randomness one byte per call to
 * crypto.getRandomValues (sixteen calls, ≈ 65 µs per id here); this draws the same bytes
 * from the same CSPRNG a page at a time (≈ 2 µs).
 */
import { getRandomValues } from "node:crypto";
import { monotonicFactory } from "ulid";

export function runIdFactory(): () => string {
  const page = new Uint8Array(4096);
  let at = page.length;
  return monotonicFactory(() => {
    if (at === page.length) {
      getRandomValues(page);
      at = 0;
    }
    return (page[at++] as number) / 256;
  });
}
