/** `floe validate [--strict] FILE...`: every problem of every file, exit 0 / 1 / 2. */
import { formatDiagnostic, sortDiagnostics, type Diagnostic } from "../flows/diagnostics.js";
import { validateFile } from "../flows/load.js";
import { errorMessage } from "../flows/errors.js";

export interface Out {
  out(line: string): void;
  err(line: string): void;
}

export async function validateCommand(files: readonly string[], strict: boolean, io: Out): Promise<number> {
  if (files.length === 0) {
    io.err("usage: floe validate [--strict] FILE...");
    return 2;
  }
  let failed = false;
  for (const file of files) {
    let diagnostics: Diagnostic[];
    try {
      diagnostics = (await validateFile(file)).diagnostics;
    } catch (e) {
      // A bug, not a user mistake: still one line, never a stack trace.
      diagnostics = [{ file, line: 1, col: 1, severity: "error", message: `internal error while validating: ${errorMessage(e)}` }];
    }
    const shown = strict ? diagnostics.map((d) => ({ ...d, severity: "error" as const })) : diagnostics;
    for (const d of sortDiagnostics(shown)) io.out(formatDiagnostic(d));
    const errors = shown.filter((d) => d.severity === "error").length;
    const warnings = shown.length - errors;
    if (errors > 0) failed = true;
    io.err(`${file}: ${errors === 0 ? "valid" : "invalid"} (${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"})`);
  }
  return failed ? 1 : 0;
}
