/**
 * lens studio in headless Chromium: how long a new Integrated Gradients explanation (50 steps,
 * gausslegendre, black baseline) takes to appear in the page, from the click on Explain to the
 * panel picture decoded (and to the coarse 8-step preview picture the studio shows first), and how long the path explorer takes to redraw after the slider moves
 * (input event to the next painted frame). Workloads: the bundled shapes model and MobileNetV2
 * (uint8 TFLite, 224x224) from ../shared/models-external. Each run changes the seed, so the
 * studio's cache does not answer it. The studio and the browser are started as the tests start
 * them (test/studio).
 *
 * `npm run bench -- studio` (`BENCH_QUICK=1`: one run per workload, printed instead of written)
 */
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { SHARED } from '../test/helpers/cli.js';
import { launchChromium } from '../test/studio/browser.js';
import { buildStudioWeb, startStudioCli } from '../test/studio/helpers.js';
import { median, writeBenchResult, type Cell } from './lib.js';

const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = QUICK ? 1 : 3;
const MOBILENET = resolve(SHARED, 'models-external/mobilenet_v2_1.0_224_quant');

interface Workload {
  name: string;
  args: string[];
  image: string;
  /** Goal from issue #17, milliseconds. */
  goalMs: number;
}

const workloads: Workload[] = [
  { name: 'bundled shapes-resnet (64x64)', args: ['--model', 'default'], image: 'bird.bmp', goalMs: 1000 },
];
if (existsSync(MOBILENET)) {
  workloads.push({
    name: 'MobileNetV2 1.0 224 (uint8 .tflite)',
    args: ['--model', resolve(MOBILENET, 'mobilenet_v2_1.0_224_quant.tflite'), '--labels', resolve(MOBILENET, 'imagenet_labels.txt')],
    image: 'parrot.jpg',
    goalMs: 5000,
  });
}

// Page-side timing (strings: the bench compiles without DOM types). Explain: click, then wait
// until the run is done and the first panel's picture is decoded; the preview time is when the
// first coarse picture was decoded.
const TIME_EXPLAIN = `(async () => {
  const t0 = performance.now();
  let preview = null;
  document.querySelector('button.primary').click();
  await new Promise((resolve, reject) => {
    const check = () => {
      if (document.querySelector('.error:not(.empty)')) return reject(new Error(document.querySelector('.error').innerText));
      const coarse = document.querySelector('figure.panel[data-preview=true] img');
      if (preview === null && coarse && coarse.complete && coarse.naturalWidth > 0) preview = performance.now() - t0;
      const img = document.querySelector('figure.panel[data-preview=false] img');
      if (document.body.dataset.explained && img && img.complete && img.naturalWidth > 0) resolve();
      else requestAnimationFrame(check);
    };
    check();
  });
  return { total: performance.now() - t0, preview };
})()`;

// Slider: set a value, fire input, wait for the canvas to say it drew that alpha, then one frame.
const TIME_SLIDER = `(async () => {
  const slider = document.getElementById('alpha');
  const canvas = document.querySelector('canvas.interp');
  const times = [];
  for (let i = 0; i <= 20; i++) {
    const value = String(((i * 37) % 101) / 100);
    const t0 = performance.now();
    slider.value = value;
    slider.dispatchEvent(new Event('input', { bubbles: true }));
    await new Promise((resolve) => {
      const check = () => (canvas.dataset.alpha === String(Number(value)) ? requestAnimationFrame(() => resolve()) : requestAnimationFrame(check));
      check();
    });
    times.push(performance.now() - t0);
  }
  return times;
})()`;

const rows: Record<string, Cell>[] = [];
buildStudioWeb();
for (const w of workloads) {
  const studio = await startStudioCli([...w.args, resolve(SHARED, 'images', w.image)]);
  const browser = await launchChromium();
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(studio.url);
    await page.getByRole('button', { name: new RegExp(w.image.replace('.', '\\.')) }).click();
    await page.locator('#steps').fill('50');
    const explainMs: number[] = [];
    const serverMs: number[] = [];
    const previewMs: number[] = [];
    for (let run = 0; run <= RUNS; run++) {
      await page.locator('#seed').fill(String(run + 1));
      const { total: ms, preview } = (await page.evaluate(TIME_EXPLAIN)) as { total: number; preview: number | null };
      // The server's own time for the method, as the panel shows it ("0.93 s").
      const server = 1000 * Number(/([\d.]+) s$/.exec(await page.locator('figure.panel .note').first().innerText())?.[1]);
      // Run 0 warms up the engine (first compilation); the rest are the steady state a user sees.
      if (run > 0) {
        explainMs.push(ms);
        serverMs.push(server);
        if (preview !== null) previewMs.push(preview);
      }
      process.stderr.write(`${w.name}: explain run ${run}: ${ms.toFixed(0)} ms in the page (preview ${preview === null ? 'not seen' : `${preview.toFixed(0)} ms`}), ${server.toFixed(0)} ms computing\n`);
    }
    await page.getByRole('button', { name: 'Explore path' }).first().click();
    await page.locator('canvas.interp[data-alpha]').waitFor();
    const sliderMs = (await page.evaluate(TIME_SLIDER)) as number[];
    rows.push({
      workload: w.name,
      explainMedianMs: Math.round(median(explainMs)),
      explainMaxMs: Math.round(Math.max(...explainMs)),
      explainGoalMs: w.goalMs,
      previewMedianMs: previewMs.length > 0 ? Math.round(median(previewMs)) : null,
      previewRuns: previewMs.length,
      methodMedianMs: Math.round(median(serverMs)),
      studioOverheadMedianMs: Math.round(median(explainMs.map((ms, i) => ms - serverMs[i]!))),
      sliderMedianMs: Number(median(sliderMs).toFixed(1)),
      sliderMaxMs: Number(Math.max(...sliderMs).toFixed(1)),
      sliderGoalMs: 100,
      runs: explainMs.length,
    });
  } finally {
    await browser.close();
    await studio.stop();
  }
}
const notes = [
  'explain: click on Explain to the first panel picture decoded in the page (server-sent events, IG 50 steps gausslegendre, black baseline, a new seed per run so the cache does not answer); the first run (engine warm-up) is left out.',
  'preview: click on Explain to the first coarse picture decoded (IG 8 steps, computed before the 50-step result when the model would take over a second by its last run; previewRuns counts the runs that had one, so none on a model that answers at once).',
  'methodMedianMs: the attribution method alone, timed by the server (the panel caption); studioOverheadMedianMs: page time minus that (the coarse preview computed first, events, PNG rendering and decoding).',
  'slider: input event on the alpha slider to the next animation frame after the canvas drew that alpha (the F(alpha) and gradient charts re-render in the same frame); 21 positions.',
  `load average at the end of the run: ${loadavg().map((v) => v.toFixed(1)).join(', ')} (the machine is shared; numbers scale with it).`,
  'MobileNetV2 is a TFLite model: it runs on the onnxruntime engine, compiled from its lowering to TensorFlow ops (src/graph/tflite.ts), like SavedModels.',
];
if (QUICK) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n${notes.join('\n')}\n`);
else writeBenchResult('studio', 'lens studio in Chromium: time to a new IG and to a path-slider redraw', rows, notes);
