/** `floe hash-password`: reads a password (from a terminal without echo, or from stdin) and prints its scrypt hash for common.users. */
import { createInterface } from "node:readline";
import { hashPassword } from "../hub/api/passwords.js";
import type { Out } from "./validate.js";

async function readPassword(): Promise<string> {
  const tty = process.stdin.isTTY === true;
  if (tty) process.stderr.write("password: ");
  const rl = createInterface({ input: process.stdin, terminal: false });
  if (tty) process.stdin.setRawMode?.(false);
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return "";
}

export async function hashPasswordCommand(io: Out): Promise<number> {
  const pw = await readPassword();
  if (pw.length < 8) {
    io.err("floe hash-password: the password must have at least 8 characters");
    return 2;
  }
  io.out(await hashPassword(pw));
  return 0;
}
