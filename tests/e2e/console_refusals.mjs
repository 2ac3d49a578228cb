// What a member may not do: the Cluster page and another org's pages are `Not found`
// (404), and a console form posted without its csrf field is `Refused` (403).
//
// env: BASE_URL, SCREENSHOT_DIR, SCENARIO (the harness), and
//   OIDC_ISSUER  the provider's issuer
//   LOGIN_HINT   a member (not an org admin, not a sysadmin) of OWN_ORG only
//   OWN_ORG      the member's org id
//   OTHER_ORG    an org the member does not belong to
//
// Result: {refused: [{action, status, h1}]} (no reply awaited)

import {
  BASE_URL, expect, expectEqual, formWith, formsWithoutCsrf, heading, navLinks, need, result,
  scenario, screenshot, signIn, step, url,
} from './lib.mjs';

const issuer = need('OIDC_ISSUER');
const loginHint = need('LOGIN_HINT');
const ownOrg = need('OWN_ORG');
const otherOrg = need('OTHER_ORG');

/** GETs `path` in the page and checks it is a 404 `Not found` page. */
async function notFound(page, path) {
  step(`GET ${path}: Not found`);
  const res = await page.goto(url(path));
  expectEqual(res.status(), 404, `the status of ${path}`);
  await heading(page, 'Not found');
}

/** POSTs `fields` to `action` from the page, without a csrf field. */
async function postWithoutCsrf(page, action, fields) {
  return page.evaluate(async ({ action, fields }) => {
    const body = new URLSearchParams(fields);
    body.delete('csrf');
    const res = await fetch(action, { method: 'POST', body, credentials: 'same-origin', redirect: 'manual' });
    const html = await res.text();
    const doc = new DOMParser().parseFromString(html, 'text/html');
    return {
      action,
      status: res.status,
      h1: doc.querySelector('h1')?.textContent?.trim() ?? null,
      text: doc.querySelector('main')?.textContent?.replace(/\s+/g, ' ').trim() ?? html.slice(0, 500),
    };
  }, { action, fields });
}

/** The fields of every POST form under /console/ on the page but `Sign out`'s. */
async function consoleForms(page) {
  return page.$$eval('form', (forms) => forms
    .filter((f) => (f.getAttribute('method') ?? '').toLowerCase() === 'post')
    .filter((f) => new URL(f.action).pathname.startsWith('/console/'))
    .filter((f) => !/sign-out/.test(new URL(f.action).pathname))
    .map((f) => ({ action: f.getAttribute('action'), fields: [...new FormData(f).entries()].map(([k, v]) => [k, String(v)]) })));
}

await scenario(async ({ page }) => {
  await signIn(page, { issuer, loginHint });
  const links = await navLinks(page);
  expect(!links.includes('Cluster'), `a member's main nav has no Cluster: ${links}`);

  await notFound(page, '/console/cluster');
  await screenshot(page, 'not-found');
  await notFound(page, `/console/pins?org=${otherOrg}`);
  await notFound(page, `/console/tokens?org=${otherOrg}`);

  step('their own org is there');
  const own = await page.goto(url(`/console/pins?org=${ownOrg}`));
  expectEqual(own.status(), 200, 'the status of their own org\'s pins');
  await heading(page, 'Pins');
  expectEqual((await formsWithoutCsrf(page)).join('; '), '', 'POST forms without a csrf field on Pins');
  // Fill the add form so that only the missing csrf can be why it is refused.
  const add = formWith(page, 'Add pin');
  await add.getByLabel('CID', { exact: true }).fill('bafkqaaa');
  await add.getByLabel('Name', { exact: true }).fill('csrf-less');
  const forms = await consoleForms(page);

  await page.goto(url('/console/tokens'));
  await heading(page, 'Tokens');
  expectEqual((await formsWithoutCsrf(page)).join('; '), '', 'POST forms without a csrf field on Tokens');
  forms.push(...await consoleForms(page));

  const refused = [];
  step('POST /console/tokens without csrf');
  const bare = await postWithoutCsrf(page, '/console/tokens', { label: 'x' });
  refused.push(bare);
  for (const f of forms) {
    step(`POST ${f.action} without csrf`);
    refused.push(await postWithoutCsrf(page, f.action, f.fields));
  }
  for (const r of refused) {
    expectEqual(r.status, 403, `the status of a csrf-less POST to ${r.action}`);
    expectEqual(r.h1, 'Refused', `the h1 of a csrf-less POST to ${r.action}`);
    expect(/expired/i.test(r.text), `the Refused page says the form expired: ${r.text}`);
  }

  step('a Create token form whose csrf field is gone, submitted as a person would');
  const create = formWith(page, 'Create token');
  await create.locator('input[name="csrf"]').evaluate((input) => input.remove());
  await create.getByLabel('Label', { exact: true }).fill('x');
  const [posted] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/console/tokens'),
    create.getByRole('button', { name: 'Create token', exact: true }).click(),
  ]);
  expectEqual(posted.status(), 403, 'the status of the csrf-less Create token');
  await heading(page, 'Refused');
  await screenshot(page, 'refused');

  step('nothing was created');
  await page.goto(url('/console/tokens'));
  expectEqual(await page.locator('tr[data-jti]').count(), 0, 'tokens after the refused POSTs');
  await page.goto(url('/console/pins'));
  expectEqual(await page.locator('tr[data-requestid]').count(), 0, 'pins after the refused POSTs');
  result({ refused: refused.map(({ action, status, h1 }) => ({ action, status, h1 })), base: BASE_URL });
});
