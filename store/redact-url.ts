/**
 * A URL, a comma list of URLs, or a message quoting one, fit for logs: the user info before
 * `@` (a user and password, or a bare token) is hidden in every URL. The one redaction for
 * broker URLs, git remotes, fetched URLs and the messages that quote them.
 *
 * The user info runs from `://` to the first `@` before any `/`, whatever it holds: a
 * password may hold a `'` (a URL's href keeps it as it is) or, in a URL typed by hand, a
 * space. Hiding a little too much of an odd message is better than showing a password.
 */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/gi, "$1***@");
}
