/**
 * The studio's main flows in headless Chromium, against `lens studio` and a `lens serve` of the
 * bundled model started by the test: open an image, explain with two baselines, move the path
 * slider, the first picture in the CLI's default view, export a PNG (pixels and text chunks), verify served vs local (checked against
 * `lens verify`), and bad input shown in the page while the app keeps working.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPixels, readPngText } from '../../src/index.js';
import { SHARED, runLens } from '../helpers/cli.js';
import { chromiumAvailable, launchChromium } from './browser.js';
import { buildStudioWeb, startLensServe, startStudioCli, type RunningProcess } from './helpers.js';

const BIRD = resolve(SHARED, 'images/bird.bmp');
const CAT = resolve(SHARED, 'images/cat.bmp');

describe.runIf(chromiumAvailable())('lens studio in Chromium', () => {
  let serve: RunningProcess & { grpc: string; name: string };
  let studio: RunningProcess & { url: string };
  let browser: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    buildStudioWeb();
    serve = await startLensServe(mkdtempSync(join(tmpdir(), 'studio-serve-')));
    studio = await startStudioCli(['--model', 'default', '--server', serve.grpc, '--served-model', serve.name, BIRD]);
    browser = await launchChromium();
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(studio.url);
  });
  afterAll(async () => {
    await browser?.close();
    await studio?.stop();
    await serve?.stop();
  });

  it('opens an image file and shows its local and served predictions', async () => {
    await page.locator('#upload').setInputFiles(CAT);
    const thumb = page.getByRole('button', { name: /cat\.bmp/ });
    await expect.poll(() => thumb.getAttribute('aria-pressed')).toBe('true');
    await expect.poll(() => thumb.locator('[data-kind=local]').innerText()).toMatch(/(disc|square|triangle|star|cross) 0\.\d+/);
    await expect.poll(() => thumb.locator('[data-kind=served]').innerText()).toMatch(/served: (disc|square|triangle|star|cross) 0\.\d+/);
  });

  it('explains with two baselines and moves the path slider', async () => {
    await page.getByRole('button', { name: /bird\.bmp/ }).click();
    await page.getByLabel('white', { exact: true }).check();
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.waitForFunction('document.body.dataset.explained === "2"');
    const panels = page.locator('figure.panel');
    await expect.poll(() => panels.count()).toBe(2);
    await expect.poll(() => panels.locator('img').first().evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBe(64);
    await expect.poll(() => panels.nth(1).innerText()).toMatch(/white · (disc|square|triangle|star|cross)/);

    await panels.first().getByRole('button', { name: 'Explore path' }).click();
    const slider = page.getByLabel(/alpha = /);
    await expect.poll(() => page.locator('canvas.interp').getAttribute('data-alpha')).toBe('0.5');
    await slider.focus();
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.locator('canvas.interp').getAttribute('data-alpha')).toBe('0.55');
    const centre = async () => (await page.evaluate("Array.from(document.querySelector('canvas.interp').getContext('2d').getImageData(96, 96, 1, 1).data)")) as number[];
    // At alpha 0 the picture is the black baseline; at 1 it is the image.
    await page.keyboard.press('Home');
    await expect.poll(() => page.locator('canvas.interp').getAttribute('data-alpha')).toBe('0');
    expect((await centre()).slice(0, 3)).toEqual([0, 0, 0]);
    await page.keyboard.press('End');
    await expect.poll(() => page.locator('canvas.interp').getAttribute('data-alpha')).toBe('1');
    const image = (await loadPixels(BIRD, { size: [64, 64], resize: 'pad' })).data;
    const atOne = await centre();
    const expected = [0, 1, 2].map((c) => image[(32 * 64 + 32) * 3 + c]!);
    atOne.slice(0, 3).forEach((v, c) => expect(Math.abs(v - expected[c]!)).toBeLessThanOrEqual(1));
    const completeness = await page.locator('[data-fact=delta]').innerText();
    expect(completeness).toMatch(/^\d/);
    // The path chart saves as a self-contained SVG (styles inside) that an SVG renderer reads.
    const saved = page.waitForEvent('download');
    await page.locator('section.path').getByRole('button', { name: 'Save chart (SVG)' }).first().click();
    const svg = readFileSync(await (await saved).path());
    expect(svg.toString()).toMatch(/^<\?xml[^]*<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*<style>[^]*F\(α\) along the path/);
    const drawn = await sharp(svg).raw().toBuffer({ resolveWithObject: true });
    expect(drawn.info.width).toBe(520);

    // The path view as PNG, drawn by the CLI's code: the interpolated image at alpha 1 (the image itself, 3x) beside the chart.
    const pathDownload = page.waitForEvent('download');
    await page.getByRole('group', { name: 'Export the path view' }).getByRole('link', { name: 'PNG' }).click();
    const pathPng = readFileSync(await (await pathDownload).path());
    expect(readPngText(pathPng)).toMatchObject({ view: 'path', alpha: '1', method: 'integrated_gradients', baseline: 'black', steps: '50', model: 'shapes-resnet', image: BIRD, Software: 'serving-lens' });
    const path = await sharp(pathPng).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const at = ((42 + 3 * 32 + 1) * path.info.width + 12 + 3 * 32 + 1) * 3;
    expected.forEach((v, c) => expect(Math.abs(path.data[at + c]! - v)).toBeLessThanOrEqual(1));
    await page.getByRole('group', { name: 'Export the path view' }).getByRole('button', { name: 'lens command' }).click();
    await expect.poll(() => page.getByLabel('Command line that writes the path view').inputValue()).toMatch(/^lens explain .*bird\.bmp .*--baseline black .*--path-view 1$/);
  });

  it('exports the deletion and insertion curves of both panels as one PNG', async () => {
    await page.getByRole('button', { name: 'Deletion / insertion curves' }).click();
    const exports = page.getByRole('group', { name: 'Export the curves' });
    await exports.waitFor();
    const download = page.waitForEvent('download');
    await exports.getByRole('link', { name: 'PNG' }).click();
    const png = readFileSync(await (await download).path());
    expect(readPngText(png)).toMatchObject({ view: 'curves', curves: 'black,white', curve_steps: '16', method: 'ig', model: 'shapes-resnet', image: BIRD });
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    // Each panel's curves in its own colour: black's blue (#1f77b4) and white's red (#d62728).
    const count = (rgb: number[]) => {
      let n = 0;
      for (let p = 0; p < info.width * info.height; p++) if (rgb.every((v, c) => Math.abs(data[p * 3 + c]! - v) <= 8)) n++;
      return n;
    };
    expect(count([0x1f, 0x77, 0xb4])).toBeGreaterThan(200);
    expect(count([0xd6, 0x27, 0x28])).toBeGreaterThan(200);
    await exports.getByRole('button', { name: 'lens command' }).click();
    await expect.poll(() => page.getByLabel('Command line that writes the curves').inputValue()).toMatch(/^lens explain .*bird\.bmp .*--baseline black,white .*--curves 16$/);
  });

  it('opens on the CLI’s default view and exports it as lens explain draws it: overlay on the photo, text chunks, colour', async () => {
    // The first picture is lens explain's: |attribution| over the dimmed photo, not a pale blended heat map.
    expect(await page.getByLabel('Visualization').inputValue()).toBe('overlay');
    expect(await page.getByLabel('Sign').inputValue()).toBe('absolute_value');
    // ...and the panels are drawn in it (checked by name: a share of coloured pixels would not tell, Captum's blend tints every pixel).
    expect(await page.locator('figure.panel').first().locator('img').first().getAttribute('src')).toMatch(/[?&]viz=overlay&sign=absolute_value/);

    const download = page.waitForEvent('download');
    await page.locator('figure.panel').first().getByRole('link', { name: 'PNG' }).click();
    const png = readFileSync(await (await download).path());
    const text = readPngText(png);
    expect(text).toMatchObject({ method: 'integrated_gradients', baseline: 'black', steps: '50', rule: 'gausslegendre', model: 'shapes-resnet', image: BIRD, Software: 'serving-lens' });
    expect(text).toMatchObject({ canvas: 'photo', viz: 'overlay', sign: 'absolute_value', smooth: '1.5' });
    // The model saw bird.bmp padded to a square, but the photo drawn has no padding: the legend does not name any.
    expect(text.notes).not.toMatch(/padding/);
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([512, 343]);
    // The overlay colours the photo (inferno is far from grey) where the attribution is.
    let coloured = 0;
    for (let p = 0; p < info.width * info.height; p++) {
      const [r, g, b] = [data[p * 3]!, data[p * 3 + 1]!, data[p * 3 + 2]!];
      if (Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
    }
    expect(coloured / (info.width * info.height)).toBeGreaterThan(0.02);
  });

  it('compares served and local image by image, as lens verify does', async () => {
    await page.getByRole('button', { name: 'Verify served vs local' }).click();
    const rows = page.locator('table.verify tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const cli = await runLens(['verify', BIRD, CAT, '--server', serve.grpc, '--model', serve.name, '--local', 'default', '--json']);
    // The served export decodes JPEG bytes in its graph: lens verify reports the same-bytes comparison under `serving`.
    const report = (JSON.parse(cli.stdout) as { serving: { images: { maxProbabilityDifference: number; ok: boolean }[] } }).serving;
    expect(report.images.every((r) => r.ok)).toBe(true);
    for (let i = 0; i < 2; i++) {
      const cells = await rows.nth(i).locator('td').allInnerTexts();
      expect(Number(cells[3])).toBeCloseTo(report.images[i]!.maxProbabilityDifference, 3);
      expect(cells[4] === 'ok').toBe(report.images[i]!.ok);
    }
  });

  it('explains the served model with a forward-only method through the same controls', async () => {
    await page.getByLabel('Model', { exact: true }).selectOption('served');
    await page.getByLabel('Method').selectOption('occlusion');
    await page.getByLabel('white', { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.waitForFunction('document.body.dataset.explained === "1"');
    await expect.poll(() => page.locator('figure.panel').first().innerText()).toMatch(/occlusion/);
    await expect.poll(() => studio.log()).toMatch(/studio: occlusion black on .*bird\.bmp/);
    await page.getByLabel('Model', { exact: true }).selectOption('local');
    await page.getByLabel('Method').selectOption('ig');
    await page.getByLabel('white', { exact: true }).check();
  });

  it('shows an unreadable image and a failed method in the page and the log, and keeps working', async () => {
    const junk = join(mkdtempSync(join(tmpdir(), 'studio-junk-')), 'notes.png');
    writeFileSync(junk, 'these are notes, not pixels');
    await page.locator('#upload').setInputFiles(junk);
    const alert = page.getByRole('alert').first();
    await expect.poll(() => alert.innerText()).toMatch(/cannot decode image notes\.png/);
    await expect.poll(() => studio.log()).toMatch(/POST \/api\/images failed: cannot decode image notes\.png/);

    await page.getByRole('button', { name: 'dismiss the error' }).click();
    await page.getByLabel('More (comma-separated specs)').fill('image:/no/such/baseline.png');
    await page.getByRole('button', { name: 'Explain' }).click();
    await expect.poll(() => alert.innerText()).toMatch(/baseline\.png/);
    await expect.poll(() => studio.log()).toMatch(/explain failed: .*baseline\.png/);

    await page.getByLabel('More (comma-separated specs)').fill('');
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.waitForFunction('document.body.dataset.explained === "2"');
    expect(await page.locator('figure.panel').count()).toBe(2);
    expect(errors).toEqual([]);
  });

  it('shows a coarse picture first and refines it, with the progress bar meanwhile', async () => {
    await page.getByLabel('white', { exact: true }).uncheck();
    // Long enough (over PREVIEW_WORTH_MS on the bundled model) that the studio previews it.
    await page.locator('#steps').fill('1200');
    await page.evaluate('performance.clearMarks(); performance.clearMeasures()');
    await page.getByRole('button', { name: 'Explain' }).click();
    await expect.poll(() => page.locator('#explain-progress').count()).toBe(1);
    await page.waitForFunction("performance.getEntriesByName('lens-final-drawn').length > 0");
    const marks = (await page.evaluate("({ preview: performance.getEntriesByName('lens-preview-drawn').map((m) => m.startTime), final: performance.getEntriesByName('lens-final-drawn').map((m) => m.startTime) })")) as { preview: number[]; final: number[] };
    expect(marks.preview.length).toBeGreaterThan(0);
    expect(Math.min(...marks.preview)).toBeLessThan(Math.min(...marks.final));
    await expect.poll(() => page.locator('figure.panel').first().getAttribute('data-preview')).toBe('false');
    await expect.poll(() => page.locator('figure.panel').first().innerText()).toMatch(/1200 steps/);
    expect(errors).toEqual([]);
  });
});
