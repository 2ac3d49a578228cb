// A member's day in the console: signs in through the identity provider, adds a pin
// and watches its status turn `pinned` live (no reload), mints a token and revokes it,
// and signs out.
//
// env: BASE_URL, SCREENSHOT_DIR, SCENARIO (the harness), and
//   OIDC_ISSUER  the provider's issuer (with its trailing slash)
//   LOGIN_HINT   the account to sign in as (a member of exactly one org)
//   PIN_CID      the CID to pin: its content is NOT on the origin yet; the test adds it
//                when told (`added`), so the status must change while the page is open
//   PIN_NAME     the pin's name (unique: the row is found by it)
//   PIN_ORIGIN   the origin's multiaddr
//
// Results (each waits for the test's reply unless marked *):
//   {stage: "added", requestid, status}     the row is on the page, not pinned yet; the
//                                           reply names the API's status now
//                                           ({api_status: "pinning"}), which the page must
//                                           come to show
//   {stage: "pinning", requestid}           it does; the reply comes once the origin has
//                                           the content
//   {stage: "pinned", statuses, requestid}* the status cell went to `pinned` live
//   {stage: "minted", token, service_add, jti}
//   {stage: "revoked", jti}
//   {stage: "signed-out"}*

import {
  BASE_URL, askTest, expect, expectEqual, formWith, formsWithoutCsrf, heading, jwtClaims,
  mainNav, markDocument, navLinks, navigate, need, result, sameDocument, scenario, screenshot,
  signIn, step, url, waitForText, where,
} from './lib.mjs';

const issuer = need('OIDC_ISSUER');
const loginHint = need('LOGIN_HINT');
const cid = need('PIN_CID');
const name = need('PIN_NAME');
const origin = need('PIN_ORIGIN');

/** Clicks `target` and waits for whatever page that leads to to load. */
async function press(page, target) {
  await target.click();
  await page.waitForLoadState('load');
}

await scenario(async ({ context, page }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE_URL });
  const sockets = [];
  page.on('websocket', (ws) => {
    if (new URL(ws.url()).pathname !== '/v1/events') return;
    sockets.push(ws.url());
    console.error(`[ws] opened ${ws.url()}`);
    ws.on('framereceived', (f) => console.error(`[ws ←] ${f.payload}`));
    ws.on('close', () => console.error('[ws] closed'));
  });

  step('signed out, /console/ leads to the sign-in page');
  await page.goto(url('/console/'));
  expectEqual(new URL(page.url()).pathname, '/console/sign-in', 'where /console/ leads when signed out');
  const link = page.getByRole('link', { name: 'Sign in', exact: true });
  const href = new URL(await link.getAttribute('href'), BASE_URL);
  expectEqual(href.pathname, '/v1/auth/login', 'the Sign in link\'s path');
  expectEqual(href.searchParams.get('return_to'), '/console/pins', 'the Sign in link\'s return_to');
  await screenshot(page, 'sign-in');

  await signIn(page, { issuer, loginHint });
  expectEqual(new URL(page.url()).pathname, '/console/pins', 'where sign-in lands');
  await heading(page, 'Pins');
  const links = await navLinks(page);
  for (const l of ['Pins', 'Tokens', 'Orgs']) expect(links.includes(l), `the main nav has ${l}: ${links}`);
  for (const l of ['Cluster', 'Audit']) expect(!links.includes(l), `a member's main nav has no ${l}: ${links}`);
  await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();
  await page.getByText('No pins yet').first().waitFor();
  const bare = await formsWithoutCsrf(page);
  expectEqual(bare.join('; '), '', 'POST forms without a csrf field on Pins');

  step('signed in, /console/ leads to Pins');
  await page.goto(url('/console/'));
  expectEqual(new URL(page.url()).pathname, '/console/pins', 'where /console/ leads when signed in');

  step(`add ${cid} as "${name}" from ${origin}`);
  const add = formWith(page, 'Add pin');
  await add.getByLabel('CID', { exact: true }).fill(cid);
  await add.getByLabel('Name', { exact: true }).fill(name);
  await add.getByLabel('Origins', { exact: true }).fill(origin);
  await press(page, add.getByRole('button', { name: 'Add pin', exact: true }));
  const row = page.locator('tr[data-requestid^="pin_"]').filter({ hasText: name });
  await row.waitFor();
  const requestid = await row.getAttribute('data-requestid');
  const status = row.locator('td[data-field="status"]');
  const before = (await status.innerText()).trim();
  step(`row ${requestid} is on ${where(page)}, status ${before}`);
  expect(['queued', 'pinning'].includes(before), `a pin whose content nobody has yet is queued or pinning, not ${before}`);

  // From here on the page must not be reloaded: the status changes over /v1/events.
  const mark = await markDocument(page);
  const api = await askTest({ stage: 'added', requestid, status: before });
  // The API says `pinning` now (the node is looking for the content, which nobody has
  // yet): the open page must come to say so too, even if the change happened between
  // rendering the page and its event stream opening.
  const toPinning = await waitForText(page, status, api.api_status, {
    timeout: 15_000,
    what: `status of ${requestid} (the API says ${api.api_status})`,
  });
  await askTest({ stage: 'pinning', requestid });
  const toPinned = await waitForText(page, status, 'pinned', { timeout: 90_000, what: `status of ${requestid}` });
  const statuses = [...new Set([before, ...toPinning, ...toPinned])];
  expect(await sameDocument(page, mark), `the status changed without a reload (now on ${where(page)})`);
  expect(sockets.length > 0, 'the pins page opened a WebSocket to /v1/events');
  step(`status went ${statuses.join(' → ')} over ${sockets[0]}`);
  await screenshot(page, 'pins');
  result({ stage: 'pinned', requestid, statuses });

  await navigate(page, 'Tokens');
  const create = formWith(page, 'Create token');
  await create.getByLabel('Label', { exact: true }).fill('laptop (e2e)');
  await create.getByLabel('TTL (hours)', { exact: true }).fill('1');
  await create.getByLabel('pin:read', { exact: true }).check();
  step('create a pin:read token');
  await press(page, create.getByRole('button', { name: 'Create token', exact: true }));
  const jwt = (await page.locator('code#new-token').innerText()).trim();
  expectEqual(jwt.split('.').length, 3, `#new-token holds a JWT (${jwt.slice(0, 40)}…): its number of parts`);
  const serviceAdd = (await page.locator('code#service-add').innerText()).trim();
  expectEqual(serviceAdd, `ipfs pin remote service add anchorage ${BASE_URL}/v1 ${jwt}`, '#service-add');
  const { jti } = jwtClaims(jwt);
  expect(jti?.startsWith('tok_'), `the token's jti is tok_…: ${jti}`);
  const tokenRow = page.locator(`tr[data-jti="${jti}"]`);
  await tokenRow.waitFor();
  const copy = page.getByRole('button', { name: 'Copy', exact: true }).first();
  await copy.click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expectEqual(copied.trim(), jwt, 'what the first Copy button put on the clipboard');
  await screenshot(page, 'tokens');
  await askTest({ stage: 'minted', token: jwt, service_add: serviceAdd, jti });

  step(`revoke ${jti}`);
  await press(page, tokenRow.getByRole('button', { name: /^Revoke/ }));
  await heading(page, 'Tokens');
  await askTest({ stage: 'revoked', jti });

  step('the token is shown once');
  await page.goto(url('/console/tokens'));
  await heading(page, 'Tokens');
  expectEqual(await page.locator('code#new-token').count(), 0, 'the number of #new-token after a reload');

  step('sign out');
  await press(page, page.getByRole('button', { name: 'Sign out', exact: true }));
  expectEqual(await mainNav(page).count(), 0, `the main nav after signing out (on ${where(page)})`);
  await page.goto(url('/console/pins'));
  expectEqual(new URL(page.url()).pathname, '/console/sign-in', 'where /console/pins leads after signing out');
  await screenshot(page, 'signed-out');
  result({ stage: 'signed-out' });
});
