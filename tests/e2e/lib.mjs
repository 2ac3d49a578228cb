// The browser side of anchorage's end-to-end tests: a few helpers over playwright-core
// driving Debian's Chromium (/usr/bin/chromium; nothing downloads a browser of its own).
// Each scenario is a module next to this one, run by tests/it/harness/browser.rs as
//
//   node tests/e2e/<scenario>.mjs
//
// with its inputs in the environment (always BASE_URL, SCREENSHOT_DIR and SCENARIO).
//
// What a scenario prints on stdout is read line by line by the Rust side:
//   STEP <what>         progress, shown with the test's output when it fails
//   RESULT <json>       a value for the test (e.g. a minted token); the test reads them
//                       in order
//   SCREENSHOT <path>   a screenshot was written
//   WARN <what>         something worth a look that does not fail the scenario
//   FAIL <why>          the failed expectation; the scenario then exits 1
// Anything else (the page's console, request failures) goes to stderr.
//
// A scenario may stop and wait for the test (`await fromTest()`: one JSON line on
// stdin), e.g. to let it check the database between two clicks. With
// EXIT_ON_STDIN_CLOSE=1 (the harness sets it) a closed stdin means the test has gone
// away, and the scenario closes the browser and exits 3.

import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import readline from 'node:readline';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 800 };
export const NARROW = { width: 390, height: 844 };

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The environment variable `name`; fails the scenario when it is missing. */
export function need(name) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

export const BASE_URL = need('BASE_URL').replace(/\/+$/, '');
export const SCENARIO = need('SCENARIO');
const SCREENSHOT_DIR = need('SCREENSHOT_DIR');

const emit = (kind, text) => process.stdout.write(`${kind} ${String(text).replace(/\n/g, ' ⏎ ')}\n`);

/** Announces what the scenario does next. */
export function step(what) {
  emit('STEP', what);
}

/** Hands `value` (anything JSON) to the test. */
export function result(value) {
  process.stdout.write(`RESULT ${JSON.stringify(value)}\n`);
}

/** Something worth a look that does not fail the scenario. */
export function warn(what) {
  emit('WARN', what);
}

/** Fails the scenario with `message` unless `condition` holds. */
export function expect(condition, message) {
  if (!condition) throw new Error(`expected: ${message}`);
}

/** Fails unless `actual === wanted`. */
export function expectEqual(actual, wanted, what) {
  if (actual !== wanted) {
    throw new Error(`expected ${what} to be ${JSON.stringify(wanted)}, got ${JSON.stringify(actual)}`);
  }
}

// ---- messages from the test ----------------------------------------------------------

const incoming = [];
const waiting = [];
let stdinClosed = false;
let onStdinClosed = () => {};
const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on('line', (line) => {
  if (!line.trim()) return;
  let value;
  try {
    value = JSON.parse(line);
  } catch (e) {
    console.error(`not JSON on stdin: ${line}`);
    return;
  }
  const w = waiting.shift();
  if (w) w.resolve(value);
  else incoming.push(value);
});
lines.on('close', () => {
  stdinClosed = true;
  for (const w of waiting.splice(0)) w.reject(new Error('the test closed stdin'));
  onStdinClosed();
});

/** The next JSON value the test sends (it sends one after reading a RESULT it waits on). */
export function fromTest() {
  if (incoming.length) return Promise.resolve(incoming.shift());
  if (stdinClosed) return Promise.reject(new Error('the test closed stdin'));
  return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
}

/** Prints `value` as a RESULT and waits for the test's answer. */
export async function askTest(value) {
  result(value);
  return fromTest();
}

// ---- the browser ---------------------------------------------------------------------

/** Where screenshot `name` of this scenario goes: `<SCREENSHOT_DIR>/<scenario>-<name>.png`. */
export function screenshotPath(name) {
  return path.join(SCREENSHOT_DIR, `${SCENARIO}-${name}.png`);
}

/** Screenshots `page` (its viewport, unless `fullPage`) as `name`. */
export async function screenshot(page, name, { fullPage = false } = {}) {
  const file = screenshotPath(name);
  await page.screenshot({ path: file, fullPage, animations: 'disabled' });
  emit('SCREENSHOT', file);
  return file;
}

/** `BASE_URL` + `p`. */
export function url(p) {
  return `${BASE_URL}${p}`;
}

/** The path (with query) of the page's current URL. */
export function where(page) {
  const u = new URL(page.url());
  return `${u.pathname}${u.search}`;
}

/**
 * Runs `body({ browser, context, page })` in a fresh headless Chromium (1280×800) and
 * exits: 0 when it resolves, 1 (after a `FAIL` line, a `failure` screenshot and the
 * page's heading and text on stderr) when it throws.
 */
export async function scenario(body) {
  const started = Date.now();
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  let browser;
  let page;
  if (process.env.EXIT_ON_STDIN_CLOSE === '1') {
    // Without the test there is nobody to report to: close the browser and go.
    onStdinClosed = () => {
      console.error('stdin closed: the test has gone away; closing the browser');
      Promise.resolve(browser?.close()).finally(() => process.exit(3));
    };
    if (stdinClosed) onStdinClosed();
  }
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      timeout: 30_000,
    });
    step(`browser launched: Chromium ${browser.version()} in ${Date.now() - started} ms`);
    const context = await browser.newContext({ viewport: DESKTOP, baseURL: BASE_URL });
    context.setDefaultTimeout(15_000);
    context.setDefaultNavigationTimeout(20_000);
    page = await context.newPage();
    watch(page);
    await body({ browser, context, page });
    step(`done in ${Date.now() - started} ms`);
    await browser.close();
    process.exit(0);
  } catch (err) {
    emit('FAIL', err?.message?.split('\n')[0] ?? err);
    console.error(err?.stack ?? err);
    if (page && !page.isClosed()) {
      try {
        console.error(`--- page at failure: ${page.url()}`);
        const text = await page.evaluate(() => document.body?.innerText ?? '');
        console.error(text.slice(0, 3000));
        await screenshot(page, 'failure', { fullPage: true });
      } catch (e) {
        console.error(`(could not capture the page: ${e?.message ?? e})`);
      }
    }
    try {
      await browser?.close();
    } catch {
      // already gone
    }
    process.exit(1);
  }
}

/** Mirrors the page's console, errors and failed requests to stderr; accepts dialogs. */
function watch(page) {
  page.on('console', (m) => console.error(`[page console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page error] ${e?.message ?? e}`));
  page.on('requestfailed', (r) => {
    console.error(`[request failed] ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) console.error(`[response] ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  // confirm() before a destructive button: say yes, as the person would.
  page.on('dialog', (d) => {
    console.error(`[dialog ${d.type()}] ${d.message()}: accepted`);
    d.accept().catch(() => {});
  });
}

// ---- anchorage ---------------------------------------------------------------------------

/**
 * Signs in through the real provider: from `/console/sign-in`, clicks `Sign in`; the
 * redirect of `/v1/auth/login` to the provider's authorization endpoint gets
 * `login_hint=<loginHint>` added on the way (the test provider logs that account in by
 * itself), and the callback page finishes the sign-in and moves on. Resolves once the
 * browser is on a console page again.
 *
 * (Playwright routes see only the first request of a redirect chain, so the hint goes
 * into anchorage's 302 rather than into the provider's request.)
 */
export async function signIn(page, { issuer, loginHint }) {
  const discovery = await (await fetch(`${issuer.replace(/\/?$/, '/')}.well-known/openid-configuration`)).json();
  const authorize = discovery.authorization_endpoint;
  expect(authorize, `the provider's discovery names an authorization_endpoint: ${JSON.stringify(discovery)}`);
  const login = (u) => u.origin === BASE_URL && u.pathname === '/v1/auth/login';
  const hint = async (route) => {
    const response = await route.fetch({ maxRedirects: 0 });
    const location = response.headers().location;
    if (response.status() !== 302 || !location) {
      throw new Error(`GET ${route.request().url()} answered ${response.status()}, not a redirect: ${(await response.text()).slice(0, 300)}`);
    }
    const to = new URL(location, route.request().url());
    expectEqual(`${to.origin}${to.pathname}`, authorize, '/v1/auth/login\'s redirect');
    to.searchParams.set('login_hint', loginHint);
    await route.fulfill({ response, headers: { ...response.headers(), location: to.href } });
  };
  await page.route(login, hint);
  try {
    step(`sign in as ${loginHint}`);
    await page.goto(url('/console/sign-in'));
    await Promise.all([
      page.waitForURL(
        (u) => u.origin === BASE_URL && u.pathname.startsWith('/console/') && u.pathname !== '/console/sign-in',
        { timeout: 30_000 },
      ),
      page.getByRole('link', { name: 'Sign in', exact: true }).click(),
    ]);
  } finally {
    await page.unroute(login, hint);
  }
  step(`signed in: on ${where(page)}`);
}

/**
 * Waits for the page's `<h1>` to read `text` (exactly, trimmed) and returns it; with
 * `optional` it only warns when it does not.
 */
export async function heading(page, text, { optional = false, timeout = 10_000 } = {}) {
  const h1 = page.locator('h1').first();
  try {
    await h1.waitFor({ timeout });
    const deadline = Date.now() + timeout;
    for (;;) {
      const got = (await h1.innerText()).trim();
      if (got === text) return got;
      if (Date.now() > deadline) throw new Error(`expected the page's h1 to be "${text}", got "${got}" (on ${where(page)})`);
      await page.waitForTimeout(100);
    }
  } catch (e) {
    if (!optional) throw e;
    warn(`h1 "${text}" not found on ${where(page)}: ${e.message.split('\n')[0]}`);
    return undefined;
  }
}

/** The main navigation (`nav[aria-label="Main"]`). */
export function mainNav(page) {
  return page.getByRole('navigation', { name: 'Main' });
}

/** The link texts of the main navigation, trimmed. */
export async function navLinks(page) {
  return (await mainNav(page).getByRole('link').allInnerTexts()).map((t) => t.trim());
}

/** Clicks `name` in the main navigation and waits for its page (heading `h1`). */
export async function navigate(page, name, h1 = name) {
  step(`open ${name}`);
  await Promise.all([page.waitForEvent('load'), mainNav(page).getByRole('link', { name, exact: true }).click()]);
  await heading(page, h1);
}

/** The `<form>` that holds a button named `button`. */
export function formWith(page, button) {
  return page.locator('form').filter({ has: page.getByRole('button', { name: button, exact: true }) });
}

/**
 * The POST forms on the page that lack a hidden `csrf` field, each described by its
 * action and buttons (empty when every one has it).
 */
export async function formsWithoutCsrf(page) {
  return page.$$eval('form', (forms) =>
    forms
      .filter((f) => (f.getAttribute('method') ?? 'get').toLowerCase() === 'post')
      .filter((f) => !f.querySelector('input[type="hidden"][name="csrf"]'))
      .map((f) => `${f.getAttribute('action') ?? '(no action)'} [${[...f.querySelectorAll('button, input[type=submit]')].map((b) => b.textContent?.trim() || b.value).join(', ')}]`),
  );
}

/** Payload (claims) of a JWT, unverified. */
export function jwtClaims(jwt) {
  const [, payload] = jwt.split('.');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

/** Marks the current document; [`sameDocument`] tells whether it is still the one shown. */
export async function markDocument(page) {
  const mark = `m-${Math.random().toString(36).slice(2)}`;
  await page.evaluate((m) => {
    window.__marker = m;
  }, mark);
  return mark;
}

/** Whether the page still shows the document [`markDocument`] marked with `mark`. */
export async function sameDocument(page, mark) {
  return page.evaluate((m) => window.__marker === m, mark);
}

/**
 * Waits until `locator`'s trimmed text is `wanted` (polling, without reloading),
 * remembering every distinct value seen; returns them. Fails after `timeout` ms with
 * the values seen.
 */
export async function waitForText(page, locator, wanted, { timeout = 60_000, what = 'text' } = {}) {
  const seen = [];
  const deadline = Date.now() + timeout;
  for (;;) {
    const text = (await locator.count()) ? (await locator.first().innerText()).trim() : '(absent)';
    if (seen[seen.length - 1] !== text) {
      seen.push(text);
      step(`${what}: ${text}`);
    }
    if (text === wanted) return seen;
    if (Date.now() > deadline) {
      throw new Error(`${what} did not become "${wanted}" within ${timeout} ms (seen: ${seen.join(' → ')})`);
    }
    await page.waitForTimeout(100);
  }
}

/** Whether the page is wider than its viewport (horizontal scrolling), and by how much. */
export async function overflowX(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}
