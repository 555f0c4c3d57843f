/**
 * Regenerates docs/studio.png, the README's picture of lens studio: the bundled model on the
 * shared photos and shapes samples, IG with three baselines on one colour scale, the path
 * explorer and the deletion/insertion curves, taken with headless Chromium.
 *
 * `npx tsx bench/studio-screenshot.ts`
 */
import { resolve } from 'node:path';
import { REPO_ROOT, SHARED } from '../test/helpers/cli.js';
import { launchChromium } from '../test/studio/browser.js';
import { buildStudioWeb, startStudioCli } from '../test/studio/helpers.js';

buildStudioWeb();
const studio = await startStudioCli(['--model', 'default', resolve(SHARED, 'images/parrot.jpg')]);
const browser = await launchChromium();
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.setViewportSize({ width: 1360, height: 900 });
  await page.goto(studio.url);
  await page.getByRole('button', { name: /Add 4 shapes samples/ }).click();
  await page.getByRole('button', { name: /shape1-/ }).click();
  for (const b of ['blur', 'uniform']) await page.getByLabel(b, { exact: true }).check();
  await page.getByRole('button', { name: 'Explain' }).click();
  await page.waitForFunction('document.body.dataset.explained === "3"');
  await page.getByLabel('show ground-truth mask').check();
  await page.locator('figure.panel').nth(1).getByRole('button', { name: 'Explore path' }).click();
  await page.locator('canvas.interp[data-alpha]').waitFor();
  await page.getByLabel(/alpha = /).fill('0.3');
  await page.getByRole('button', { name: 'Deletion / insertion curves' }).click();
  await page.locator('svg.chart[aria-label^="deletion"]').waitFor();
  await page.waitForFunction('Array.from(document.images).every((i) => i.complete)');
  await page.screenshot({ path: resolve(REPO_ROOT, 'docs/studio.png'), fullPage: true });
  process.stdout.write('wrote docs/studio.png\n');
} finally {
  await browser.close();
  await studio.stop();
}
