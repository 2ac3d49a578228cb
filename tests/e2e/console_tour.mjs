// A screenshot of every main console page, for people to look at: sign-in, Pins (also at
// 390×844, the whole page), Tokens, Orgs, Cluster and Audit log, as a sysadmin who also admins an org
// with a few pins.
//
// env: BASE_URL, SCREENSHOT_DIR, SCENARIO (the harness), and
//   OIDC_ISSUER  the provider's issuer
//   LOGIN_HINT   a sysadmin's account
//
// Result: {pages: [{name, h1, overflow}]} (no reply awaited)

import {
  DESKTOP, NARROW, expect, heading, navLinks, navigate, need, overflowX, result, scenario,
  screenshot, signIn, step, url, warn,
} from './lib.mjs';

const issuer = need('OIDC_ISSUER');
const loginHint = need('LOGIN_HINT');

await scenario(async ({ page }) => {
  const pages = [];
  const shoot = async (name, h1, options = {}) => {
    await screenshot(page, name, options);
    const overflow = await overflowX(page);
    if (overflow > 0) warn(`${name} is ${overflow}px wider than its ${page.viewportSize().width}px viewport`);
    pages.push({ name, h1, overflow });
  };

  await page.goto(url('/console/sign-in'));
  await page.getByRole('link', { name: 'Sign in', exact: true }).waitFor();
  await shoot('sign-in', null);

  await signIn(page, { issuer, loginHint });
  await heading(page, 'Pins');
  await page.locator('tr[data-requestid]').first().waitFor();
  await shoot('pins', 'Pins');
  step('Pins at 390×844');
  await page.setViewportSize(NARROW);
  await shoot('pins-narrow', 'Pins', { fullPage: true });
  await page.setViewportSize(DESKTOP);

  const links = await navLinks(page);
  expect(['Pins', 'Tokens', 'Orgs', 'Cluster', 'Audit'].every((l) => links.includes(l)), `a sysadmin's main nav: ${links}`);
  for (const [link, h1, name] of [
    ['Tokens', 'Tokens', 'tokens'],
    ['Orgs', 'Orgs', 'orgs'],
    ['Cluster', 'Cluster', 'cluster'],
    ['Audit', 'Audit log', 'audit'],
  ]) {
    await navigate(page, link, h1);
    await shoot(name, h1);
  }
  result({ pages });
});
