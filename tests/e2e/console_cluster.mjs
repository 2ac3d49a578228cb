// A sysadmin drains, uncordons and cordons a node from the Cluster page.
//
// env: BASE_URL, SCREENSHOT_DIR, SCENARIO (the harness), and
//   OIDC_ISSUER  the provider's issuer
//   LOGIN_HINT   a sysadmin's account
//   NODE         the node to act on (e.g. node-1)
//   NODES        every node's id, comma-separated
//
// Results (each waits for the test's reply, which checks the database):
//   {stage: "draining", node}, {stage: "active", node}, {stage: "cordoned", node},
//   {stage: "active", node}

import {
  askTest, expect, expectEqual, navLinks, navigate, need, scenario, screenshot, signIn, step,
  waitForText,
} from './lib.mjs';

const issuer = need('OIDC_ISSUER');
const loginHint = need('LOGIN_HINT');
const node = need('NODE');
const nodes = need('NODES').split(',');

await scenario(async ({ page }) => {
  await signIn(page, { issuer, loginHint });
  const links = await navLinks(page);
  for (const l of ['Pins', 'Tokens', 'Orgs', 'Cluster', 'Audit']) {
    expect(links.includes(l), `a sysadmin's main nav has ${l}: ${links}`);
  }
  await navigate(page, 'Cluster');
  for (const n of nodes) await page.locator(`tr[data-node="${n}"]`).waitFor();
  const shown = await page.locator('tr[data-node]').evaluateAll((rows) => rows.map((r) => r.dataset.node));
  step(`nodes shown: ${shown.join(', ')}`);

  const row = page.locator(`tr[data-node="${node}"]`);
  const state = row.locator('td[data-field="state"]');
  await waitForText(page, state, 'active', { timeout: 10_000, what: `${node}'s state` });

  for (const [button, wanted] of [['Drain', 'draining'], ['Uncordon', 'active'], ['Cordon', 'cordoned'], ['Uncordon', 'active']]) {
    step(`${button} ${node}`);
    await row.getByRole('button', { name: button, exact: true }).click();
    await page.waitForLoadState('load');
    await waitForText(page, state, wanted, { timeout: 15_000, what: `${node}'s state` });
    for (const other of nodes.filter((n) => n !== node)) {
      const text = (await page.locator(`tr[data-node="${other}"] td[data-field="state"]`).innerText()).trim();
      expectEqual(text, 'active', `${other}'s state after ${button} ${node}`);
    }
    if (button === 'Drain') await screenshot(page, 'draining');
    await askTest({ stage: wanted, node });
  }
  await screenshot(page, 'cluster');
});
