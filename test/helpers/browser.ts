/**
 * Real headless Chromium (Debian's `chromium`) driven by playwright-core, for the dashboard's
 * end-to-end tests: every page watched for requests that leave the host, bytes transferred,
 * and script errors; screenshots kept under test-artifacts/ (not committed).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { Test } from "tap";
import { repoRoot } from "./paths.js";

export const CHROMIUM = process.env["FLOE_CHROMIUM"] ?? "/usr/bin/chromium";
export const ARTIFACTS = join(repoRoot, "test-artifacts", "dash");

/** Chromium, closed when the test ends. A missing browser fails the test: it must not pass by skipping. */
export async function launch(t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: the dashboard tests need it. Install Debian's package (apt-get install -y chromium; .ci/run does this) or set FLOE_CHROMIUM to a Chromium binary.`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.teardown(() => browser.close());
  return browser;
}

export interface Watched {
  readonly page: Page;
  readonly context: BrowserContext;
  /** URLs of requests that went anywhere but 127.0.0.1. */
  readonly external: string[];
  /** Uncaught script errors and console errors (a 401 while logged out is expected and left out). */
  readonly errors: string[];
  /** Bytes (headers and bodies as transferred) of every request finished since the last reset. */
  bytes(): number;
  resetBytes(): void;
}

export async function openPage(browser: Browser, o: { width?: number; height?: number; storageState?: Awaited<ReturnType<BrowserContext["storageState"]>> } = {}): Promise<Watched> {
  const context = await browser.newContext({ viewport: { width: o.width ?? 1280, height: o.height ?? 900 }, ...(o.storageState !== undefined ? { storageState: o.storageState } : {}) });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const external: string[] = [];
  const errors: string[] = [];
  let bytes = 0;
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.protocol !== "data:" && u.protocol !== "about:" && u.hostname !== "127.0.0.1") external.push(r.url());
  });
  page.on("requestfinished", (r) => {
    void r
      .sizes()
      .then((s) => {
        bytes += s.responseBodySize + s.responseHeadersSize + s.requestHeadersSize + s.requestBodySize;
      })
      .catch(() => undefined);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 401/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return {
    page,
    context,
    external,
    errors,
    bytes: () => bytes,
    resetBytes: () => {
      bytes = 0;
    },
  };
}

/** Logs in through the login page and waits for the page it leads to. */
export async function login(page: Page, base: string, user: string, password: string, next = "/app/dash"): Promise<void> {
  await page.goto(`${base}/app/login?next=${encodeURIComponent(next)}`);
  await page.fill("#login-user", user);
  await page.fill("#login-password", password);
  await page.click("#login-form button[type=submit]");
  await page.waitForURL((u) => !u.pathname.startsWith("/app/login"));
  await page.waitForSelector("main[data-ready]");
}

export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

// Page-side code is passed as text: the project's TypeScript has no DOM types, and this code
// runs in the browser, not in Node.
const UNLABELLED = `(() => {
  const out = [];
  for (const el of document.querySelectorAll("input, select, textarea, button")) {
    if (el.type === "hidden" || el.offsetParent === null) continue;
    const named = (el.labels && el.labels.length > 0) || (el.getAttribute("aria-label") || "") !== "" || (el.tagName === "BUTTON" && el.textContent.trim() !== "");
    if (!named) out.push(el.outerHTML.slice(0, 120));
  }
  return out;
})()`;

/** Form controls and buttons on the page that a screen reader could not name. */
export async function unlabelled(page: Page): Promise<string[]> {
  const r: unknown = await page.evaluate(UNLABELLED);
  return Array.isArray(r) ? r.map(String) : ["(could not check)"];
}

/** Whether the page scrolls sideways (it should not: wide parts scroll inside their own boxes). */
export async function overflowsSideways(page: Page): Promise<boolean> {
  return (await page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")) === true;
}
