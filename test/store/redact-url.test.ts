/** One URL redaction for logs: broker URLs, git remotes and fetched URLs, alone or in a message. */
import t from "tap";
import { redactUrl } from "../../store/redact-url.js";

t.test("the user info of every URL is hidden, wherever the URL stands", async (t) => {
  t.equal(redactUrl("https://user:s3cret@git.example/o/r.git"), "https://***@git.example/o/r.git");
  t.equal(redactUrl("https://ghp_token@github.com/o/r"), "https://***@github.com/o/r", "a bare token");
  t.equal(redactUrl("nats://a@h1:4222,nats://u:p@h2:4222,nats://h3:4222"), "nats://***@h1:4222,nats://***@h2:4222,nats://h3:4222");
  t.equal(redactUrl("fatal: unable to access 'https://u:p@h/x/': 403"), "fatal: unable to access 'https://***@h/x/': 403");
  t.equal(redactUrl("--config=url.https://u:p@h/.insteadOf"), "--config=url.https://***@h/.insteadOf", "not only at the start");
  t.equal(redactUrl(new URL("https://u:it's@h/x").href), "https://***@h/x", "a quote in the password (an href keeps it)");
  t.equal(redactUrl("https://u:two words@h/x"), "https://***@h/x", "a space in a URL typed by hand");
});

t.test("nothing to hide, nothing changed", async (t) => {
  for (const s of ["redis://127.0.0.1:6379", "git@github.com:o/r.git", "https://h/x?mail=a@b", "Redis at redis://h:6379 did not answer"]) t.equal(redactUrl(s), s);
});
