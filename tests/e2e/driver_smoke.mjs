// The driver itself: opens the API docs (Swagger UI, served by the binary), waits for
// them to render, screenshots them at both sizes, and does one round trip with the test.
//
// env: BASE_URL, SCREENSHOT_DIR, SCENARIO (the harness sets them)

import {
  NARROW, askTest, expect, expectEqual, result, scenario, screenshot, step, url,
} from './lib.mjs';

await scenario(async ({ page }) => {
  step('open /v1/docs');
  const res = await page.goto(url('/v1/docs'));
  expectEqual(res.status(), 200, 'the status of /v1/docs');
  const title = page.locator('.swagger-ui .info .title');
  await title.waitFor();
  const text = (await title.innerText()).trim();
  expect(text.length > 0, 'Swagger UI shows the API title');
  const operations = await page.locator('.opblock').count();
  step(`Swagger UI rendered "${text}" with ${operations} operations`);
  await screenshot(page, 'docs');

  const answer = await askTest({ title: text, operations });
  expectEqual(answer.echo, text, 'the test echoes the title');

  await page.setViewportSize(NARROW);
  await screenshot(page, 'docs-narrow');
  result({ viewport: page.viewportSize() });
});
