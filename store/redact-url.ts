/**
 * A URL, a comma list of URLs, or a message quoting one, fit for logs: the user info before
 * `@` (a user and password, or a bare token) is hidden in every URL.
 */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s'"]*@/gi, "$1***@");
}
