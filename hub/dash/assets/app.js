// The dashboard's shell: who is logged in, the header, the connection state, a small router
// over history.pushState (pages change without reloading), and the live event stream.
import { ApiError, createApi } from "./api.js";
import { h, tickTimes } from "./dom.js";
import { Live } from "./live.js";
import { mountDash } from "./page-dash.js";
import { mountFlow } from "./page-flow.js";
import { mountLogin } from "./page-login.js";
import { mountRun } from "./page-run.js";

const RANK = { viewer: 0, operator: 1, admin: 2 };
const base = document.querySelector('meta[name="floe-api"]')?.getAttribute("content") || "/build/api";
const main = document.getElementById("main");
const banner = document.getElementById("banner");
const conn = document.getElementById("conn");
const meBox = document.getElementById("me");

const app = {
  me: undefined,
  /** The API's base path (links to downloads are made from it). */
  base,
  api: createApi(base, { onUnauthorized: () => loggedOut() }),
  live: undefined,
  /** Whether the caller's role may take an action that needs `role`. */
  can(role) {
    return app.me !== undefined && (RANK[app.me.role] ?? -1) >= (RANK[role] ?? 99);
  },
  navigate(path, o = {}) {
    if (o.replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    void render(!o.replace);
  },
  /** Shows a message above the page (errors the page itself has no place for). */
  flash(msg) {
    banner.replaceChildren(h("span", {}, msg), h("button", { type: "button", class: "link", onclick: () => (banner.hidden = true) }, "Dismiss"));
    banner.hidden = false;
  },
  loggedIn(me) {
    app.me = me;
    showMe();
    app.live.start();
  },
};

const liveHooks = {
  async stillAllowed() {
    try {
      await app.api.get("/whoami");
      return true;
    } catch {
      return false;
    }
  },
};
// Every run's summary, live: the dashboard's lists. A run's node events come on a stream of
// that run (app.runLive), which in a cluster is what makes its host bring them here.
app.live = new Live(`${base}/events?logs=false`, liveHooks);
/** A stream of one run's run and node events, for its page: start() it, stop() it on leaving. */
app.runLive = (runId) => new Live(`${base}/events?logs=false&run=${encodeURIComponent(runId)}`, liveHooks);

const CONN_TEXT = { idle: "", connecting: "connecting…", live: "live", reconnecting: "reconnecting…", paused: "paused (tab hidden)" };
app.live.onStatus((s) => {
  conn.dataset.state = s;
  conn.textContent = CONN_TEXT[s] ?? s;
  conn.title = s === "reconnecting" ? "The connection to the host dropped; the page shows what it last knew and catches up once it is back." : "";
  document.body.classList.toggle("offline", s === "reconnecting");
});

function showMe() {
  document.body.classList.toggle("authed", app.me !== undefined);
  if (app.me === undefined) {
    meBox.replaceChildren();
    return;
  }
  meBox.replaceChildren(
    h("span", { class: "who", "data-role": app.me.role }, app.me.user, " ", h("span", { class: "role" }, `(${app.me.role})`)),
    h("button", { type: "button", class: "small", onclick: logout }, "Log out"),
  );
}

async function logout() {
  try {
    await app.api.post("/logout", {}, { quiet401: true });
  } catch {
    // the session is gone either way
  }
  app.me = undefined;
  app.live.stop();
  showMe();
  app.navigate("/app/login");
}

function loggedOut() {
  if (app.me === undefined && location.pathname.startsWith("/app/login")) return;
  app.me = undefined;
  app.live.stop();
  showMe();
  const next = location.pathname.startsWith("/app/login") ? "/app/dash" : location.pathname + location.search;
  app.navigate(`/app/login?next=${encodeURIComponent(next)}`, { replace: true });
}

const ROUTES = [
  [/^\/app\/(dash\/?)?$/, mountDash, "Dashboard"],
  [/^\/app\/flows\/([^/]+)\/?$/, mountFlow, "Flow"],
  [/^\/app\/runs\/([^/]+)\/?$/, mountRun, "Run"],
  [/^\/app\/login\/?$/, mountLogin, "Log in"],
];

let unmount;
let rendering = 0;

async function render(moveFocus) {
  const mine = ++rendering;
  unmount?.();
  unmount = undefined;
  banner.hidden = true;
  const path = location.pathname;
  const route = ROUTES.find(([re]) => re.test(path));
  if (route === undefined) {
    main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "/app/dash" }, "Go to the dashboard")));
    return;
  }
  const [re, mount, title] = route;
  if (mount !== mountLogin && app.me === undefined) {
    try {
      const me = await app.api.get("/whoami", { quiet401: true });
      if (mine !== rendering) return;
      app.loggedIn(me);
    } catch (e) {
      if (mine !== rendering) return;
      if (e instanceof ApiError && e.status === 401) {
        app.navigate(`/app/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
        return;
      }
      main.replaceChildren(h("h1", {}, "Can not reach the host"), h("p", { role: "alert" }, e.message), h("button", { type: "button", onclick: () => render(false) }, "Try again"));
      return;
    }
  }
  const params = (re.exec(path) ?? []).slice(1).map((x) => (x === undefined ? x : decodeURIComponent(x)));
  document.title = `${title} · floe`;
  main.replaceChildren();
  main.removeAttribute("data-ready");
  const un = mount(app, params, main, new URLSearchParams(location.search));
  // A page may navigate while mounting (the login page when already logged in).
  if (mine === rendering) unmount = un;
  else un?.();
  if (moveFocus && mine === rendering) main.focus({ preventScroll: false });
}

// Same-origin links to /app pages change the page in place instead of reloading it.
document.addEventListener("click", (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target instanceof Element ? e.target.closest("a[href]") : null;
  if (a === null || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/app/") || url.pathname.startsWith("/app/assets/")) return;
  e.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) app.navigate(url.pathname + url.search);
});
addEventListener("popstate", () => void render(true));
// Every second, so "running for" counts as a clock does; not while the tab is hidden, and at
// once when it is shown again.
setInterval(() => {
  if (document.visibilityState === "visible") tickTimes();
}, 1000);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") tickTimes();
});
void render(false);
