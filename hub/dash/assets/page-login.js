// The login page: a user of common.users with a password, or an API token (the host's
// --admin token) traded for a session. Either way the API sets the HttpOnly session cookie.
import { h } from "./dom.js";

function safeNext(q) {
  const next = q.get("next") ?? "";
  // Only our own pages: a crafted link must not send people elsewhere after they log in.
  return /^\/app\/(?!login)[A-Za-z0-9/_\-?=&.%]*$/.test(next) ? next : "/app/dash";
}

export function mountLogin(app, _params, root, query) {
  const next = safeNext(query);
  if (app.me !== undefined) {
    app.navigate(next, { replace: true });
    return undefined;
  }
  const error = h("p", { id: "login-error", class: "error", role: "alert" });
  const user = h("input", { id: "login-user", name: "user", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const token = h("input", { id: "login-token", name: "token", type: "password", autocomplete: "off", required: true });

  async function attempt(body, button) {
    error.textContent = "";
    button.disabled = true;
    try {
      const me = await app.api.post("/login", body);
      app.loggedIn({ user: me.user, role: me.role });
      app.navigate(next, { replace: true });
    } catch (e) {
      error.textContent = e.code === "E_UNAUTHORIZED" ? `Login failed: ${e.message}.` : e.message;
      button.disabled = false;
      (body.token !== undefined ? token : password).select();
    }
  }

  const tokenButton = h("button", { type: "submit" }, "Log in with the token");
  root.append(
    h(
      "div",
      { class: "login card" },
      h("h1", {}, "Log in to floe"),
      h(
        "form",
        {
          id: "login-form",
          onsubmit: (e) => {
            e.preventDefault();
            void attempt({ user: user.value.trim(), password: password.value }, submit);
          },
        },
        h("div", { class: "field" }, h("label", { for: "login-user" }, "User"), user),
        h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), password),
        h("div", { class: "actions" }, submit),
      ),
      error,
      h(
        "details",
        { class: "token-login" },
        h("summary", {}, "Use an API token instead"),
        h(
          "form",
          {
            onsubmit: (e) => {
              e.preventDefault();
              void attempt({ token: token.value.trim() }, tokenButton);
            },
          },
          h("p", { class: "muted" }, "The host's admin token is kept in <root>/admin-token (floe serve says where at start-up), or is the one given with --admin."),
          h("div", { class: "field" }, h("label", { for: "login-token" }, "Token"), token),
          h("div", { class: "actions" }, tokenButton),
        ),
      ),
    ),
  );
  root.setAttribute("data-ready", "");
  return undefined;
}
