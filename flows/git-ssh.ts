/**
 * How git reaches an ssh remote with a private key (`common.git-key`, a git task's
 * `key-file`): the one GIT_SSH_COMMAND for git tasks (agent/git-common.ts), poll-git's
 * ls-remote (hub/triggers/ls-remote.ts) and flow-files kept in git (flows/flow-file.ts),
 * so the same key is used the same way by all three. In flows/ because every layer that
 * runs git may import it.
 */

/**
 * The command, for GIT_SSH_COMMAND. git hands it to a shell, so the key path is
 * single-quoted (a path with spaces, quotes or `$` reaches ssh as one argument).
 * - IdentitiesOnly: only this key, not whatever an ssh agent on the host offers.
 * - StrictHostKeyChecking=accept-new: nobody is there to answer the host-key prompt; a
 *   known host whose key changed is still refused.
 * - BatchMode: never prompt (a passphrase, a password): fail instead of hanging until a
 *   timeout.
 */
export function gitSshCommand(keyPath: string): string {
  return `ssh -i ${shellQuote(keyPath)} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o BatchMode=yes`;
}

/** One word for a POSIX shell, whatever it holds: `'…'`, with each `'` written `'\''`. */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
