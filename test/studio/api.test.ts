/**
 * `lens studio`'s server as the page uses it, over real HTTP against `lens studio` started from the
 * CLI: explanations stream progressively and come back from the cache, exports are the CLI's own
 * files (and the command line shown reproduces them), the path data integrates to the
 * attribution, uploads are bounded and stay in a temp folder, and bad input leaves it serving.
 */
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy, loadPixels, readPngText } from '../../src/index.js';
import { SHARED, runLens } from '../helpers/cli.js';
import { buildStudioWeb, readEvents, startStudioCli, type RunningProcess } from './helpers.js';

const BIRD = resolve(SHARED, 'images/bird.bmp');
const CAT = resolve(SHARED, 'images/cat.bmp');
const HOPPER = resolve(SHARED, 'images/grace_hopper.bmp');

let studio: RunningProcess & { url: string };
const api = (path: string) => new URL(path, studio.url).href;
const getJson = async (path: string, init?: RequestInit) => {
  const res = await fetch(api(path), init);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};
const explainUrl = (params: Record<string, string>) => api(`api/explain?${new URLSearchParams({ image: 'i1', steps: '50', ...params })}`);

beforeAll(async () => {
  buildStudioWeb();
  studio = await startStudioCli(['--model', 'default', '--max-upload-mb', '0.6', BIRD, CAT]);
});
afterAll(async () => {
  expect(await studio?.stop()).toBe(0);
});

describe('lens studio API', () => {
  it('serves the bundled page and the state with the images given on the command line', async () => {
    const page = await (await fetch(studio.url)).text();
    expect(page).toMatch(/<script type="module" src="app.js">/);
    const js = await fetch(api('app.js'));
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    const { body } = await getJson('api/state');
    expect(body.local.name).toBe('shapes-resnet');
    expect(body.images.map((i: { name: string }) => i.name)).toEqual([BIRD, CAT]);
  });

  it('shows a coarse preview of every panel before the final results of a long IG', async () => {
    // The first explanation of the session: the studio cannot know yet that this model is fast.
    const events = await readEvents(explainUrl({ image: 'i2', baselines: 'black,white', steps: '500', seed: '3' }));
    const shown = events.filter((e) => e.event === 'preview' || e.event === 'result').map((e) => `${e.event} ${e.data.panel} ${e.data.steps}`);
    expect(shown).toEqual(['preview 0 8', 'preview 1 8', 'result 0 500', 'result 1 500']);
    expect(events.filter((e) => e.event === 'progress').some((e) => String(e.data.stage).startsWith('preview: '))).toBe(true);
    // The coarse picture comes inside the event, drawn as the panels are.
    const picture = String(events.find((e) => e.event === 'preview')!.data.picture);
    expect(picture).toMatch(/^data:image\/png;base64,/);
    expect(await sharp(Buffer.from(picture.split(',')[1]!, 'base64')).metadata()).toMatchObject({ width: 64, height: 64, format: 'png' });
    // Requests the model finishes at once need no preview (few steps, or a fast model by its last run); cached ones neither.
    for (const steps of ['12', '40']) {
      const quick = await readEvents(explainUrl({ image: 'i2', baselines: 'black', steps, seed: '3' }));
      expect(quick.some((e) => e.event === 'preview')).toBe(false);
    }
    const again = await readEvents(explainUrl({ image: 'i2', baselines: 'black,white', steps: '500', seed: '3' }));
    expect(again.some((e) => e.event === 'preview')).toBe(false);
  });

  it('streams progress and one result per baseline, then answers the same request from the cache', async () => {
    const events = await readEvents(explainUrl({ baselines: 'black,blur:sigma=3' }));
    const results = events.filter((e) => e.event === 'result');
    expect(results.map((r) => r.data.baseline)).toEqual(['black', 'blur:sigma=3']);
    expect(events.filter((e) => e.event === 'progress').some((e) => e.data.done === 50 && e.data.total === 50)).toBe(true);
    expect(events.at(-1)!.event).toBe('done');
    // Completeness: the attribution sums to F(x) - F(x') up to the reported delta.
    for (const r of results) {
      const c = r.data.completeness as { sum: number; inputScore: number; baselineScore: number; delta: number };
      expect(Math.abs(c.sum - (c.inputScore - c.baselineScore))).toBeCloseTo(c.delta, 6);
      expect(r.data.millis).toBeGreaterThan(0);
    }
    const again = (await readEvents(explainUrl({ baselines: 'black' }))).filter((e) => e.event === 'result');
    expect(again[0]!.data.millis).toBe(0);
    expect(again[0]!.data.key).toBe(results[0]!.data.key);
  });

  it('exports the files lens explain writes, and its command line reproduces them', async () => {
    const [result] = (await readEvents(explainUrl({ baselines: 'white', rule: 'riemann_trapezoid', steps: '24' }))).filter((e) => e.event === 'result');
    const key = String(result!.data.key);
    const q = `key=${encodeURIComponent(key)}&viz=heat_map&sign=positive`;
    const png = Buffer.from(await (await fetch(api(`api/export/png?${q}`))).arrayBuffer());
    const text = readPngText(png);
    expect(text).toMatchObject({ method: 'integrated_gradients', baseline: 'white', steps: '24', rule: 'riemann_trapezoid', model: 'shapes-resnet', image: BIRD });
    const npy = decodeNpy(Buffer.from(await (await fetch(api(`api/export/npy?${q}`))).arrayBuffer()));
    expect(npy.shape).toEqual([64, 64, 3]);
    const summary = await getJson(`api/export/json?${q}`);
    expect(summary.body.completeness.delta).toBeCloseTo((result!.data.completeness as { delta: number }).delta, 9);

    const { body } = await getJson(`api/export/command?${q}`);
    expect(body.command).toBe(`lens explain ${BIRD} --model default --method ig --baseline white --steps 24 --rule riemann_trapezoid --target top1 --viz heat_map --sign positive --seed 0`);
    const out = mkdtempSync(join(tmpdir(), 'studio-cli-'));
    const cli = await runLens([...String(body.command).split(' ').slice(1), '--out', out, '--no-progress']);
    expect(cli.code, cli.stderr).toBe(0);
    const [cliPng] = readdirSync(out).filter((f) => f.endsWith('.png'));
    const cliNpy = decodeNpy(readFileSync(join(out, cliPng!.replace(/\.png$/, '.npy'))));
    const scale = Math.max(...Array.from(npy.data as Float32Array, Math.abs));
    (npy.data as Float32Array).forEach((v, i) => expect(Math.abs(v - (cliNpy.data as Float32Array)[i]!)).toBeLessThan(1e-4 * scale));
    const raw = async (b: Buffer) => sharp(b).raw().toBuffer({ resolveWithObject: true });
    const [mine, theirs] = await Promise.all([raw(png), raw(readFileSync(join(out, cliPng!)))]);
    expect(mine.info).toEqual(theirs.info);
    expect(readPngText(readFileSync(join(out, cliPng!)))).toEqual(text);
  });

  it('exports the path and curves views as lens explain --path-view and --curves write them', async () => {
    const results = (await readEvents(explainUrl({ image: 'i2', baselines: 'black,white', steps: '16', rule: 'riemann_middle' }))).filter((e) => e.event === 'result');
    const black = encodeURIComponent(String(results[0]!.data.key));
    const pathQuery = `key=${black}&alpha=0.25&viz=heat_map&sign=positive`;
    const pathPng = Buffer.from(await (await fetch(api(`api/export/path/png?${pathQuery}`))).arrayBuffer());
    expect(readPngText(pathPng)).toMatchObject({ view: 'path', alpha: '0.25', method: 'integrated_gradients', baseline: 'black', steps: '16', rule: 'riemann_middle', model: 'shapes-resnet', image: CAT });
    // The interpolated image beside the chart: a quarter of the way from black, drawn 3x (192 px) at (12, 42).
    const { data, info } = await sharp(pathPng).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const cat = (await loadPixels(CAT, { size: [64, 64], resize: 'pad' })).data;
    for (const [x, y] of [[32, 32], [20, 40]] as const) {
      const at = ((42 + 3 * y + 1) * info.width + 12 + 3 * x + 1) * 3;
      [0, 1, 2].forEach((c) => expect(Math.abs(data[at + c]! - 0.25 * cat[(y * 64 + x) * 3 + c]!)).toBeLessThanOrEqual(1));
    }
    const table = decodeNpy(Buffer.from(await (await fetch(api(`api/export/path/npy?${pathQuery}`))).arrayBuffer()));
    expect(table.shape).toEqual([16, 5]);
    const rows = Array.from({ length: 16 }, (_, r) => Array.from((table.data as Float32Array).subarray(r * 5, r * 5 + 5)));
    rows.forEach((row, r) => expect(row[0]).toBeCloseTo((r + 0.5) / 16, 6));
    // Weights times the integrand add up to the attribution's sum.
    expect(rows.reduce((s, row) => s + row[1]! * row[3]!, 0)).toBeCloseTo((results[0]!.data.completeness as { sum: number }).sum, 3);
    const { body: pathCommand } = await getJson(`api/export/path/command?${pathQuery}`);
    expect(pathCommand.command).toBe(`lens explain ${CAT} --model default --method ig --baseline black --steps 16 --rule riemann_middle --target top1 --viz heat_map --sign positive --seed 0 --path-view 0.25`);

    const keys = encodeURIComponent(results.map((r) => String(r.data.key)).join('~'));
    const curvesQuery = `keys=${keys}&steps=8&viz=heat_map&sign=positive`;
    const curvesPng = Buffer.from(await (await fetch(api(`api/export/curves/png?${curvesQuery}`))).arrayBuffer());
    expect(readPngText(curvesPng)).toMatchObject({ view: 'curves', curves: 'black,white', curve_steps: '8', method: 'ig', model: 'shapes-resnet', image: CAT });
    const curves = decodeNpy(Buffer.from(await (await fetch(api(`api/export/curves/npy?${curvesQuery}`))).arrayBuffer()));
    expect(curves.shape).toEqual([2, 2, 9]);
    const { body: preds } = await getJson('api/images/i2/predictions');
    // Nothing deleted yet: the model's own probability; everything inserted: the same.
    expect((curves.data as Float32Array)[0]).toBeCloseTo(preds.predictions[0].probability, 5);
    expect((curves.data as Float32Array)[2 * 9 - 1]).toBeCloseTo(preds.predictions[0].probability, 5);
    const { body: curvesCommand } = await getJson(`api/export/curves/command?${curvesQuery}`);
    expect(curvesCommand.command).toBe(`lens explain ${CAT} --model default --method ig --baseline black,white --steps 16 --rule riemann_middle --target top1 --viz heat_map --sign positive --seed 0 --curves 8`);

    // The command lines write the same numbers and the same text chunks.
    for (const [command, stem, png, npy] of [
      [pathCommand.command, 'cat.ig.path', pathPng, table],
      [curvesCommand.command, 'cat.ig.curves', curvesPng, curves],
    ] as const) {
      const out = mkdtempSync(join(tmpdir(), 'studio-view-'));
      const cli = await runLens([...String(command).split(' ').slice(1), '--out', out, '--no-progress']);
      expect(cli.code, cli.stderr).toBe(0);
      expect(readPngText(readFileSync(join(out, `${stem}.png`)))).toEqual(readPngText(png));
      const theirs = decodeNpy(readFileSync(join(out, `${stem}.npy`)));
      expect(theirs.shape).toEqual(npy.shape);
      (npy.data as Float32Array).forEach((v, i) => expect((theirs.data as Float32Array)[i]).toBeCloseTo(v, 4));
    }
  });

  it('gives the IG path: the rule’s weights times the integrand add up to the attribution', async () => {
    const [result] = (await readEvents(explainUrl({ baselines: 'black', rule: 'riemann_middle', steps: '20' }))).filter((e) => e.event === 'result');
    const { body: path } = await getJson(`api/path?key=${encodeURIComponent(String(result!.data.key))}`);
    expect(path.alphas).toHaveLength(20);
    // Midpoints of 20 equal segments, an independent statement of the riemann_middle rule.
    path.alphas.forEach((a: number, i: number) => expect(a).toBeCloseTo((i + 0.5) / 20, 6));
    const integral = path.integrand.reduce((s: number, v: number, i: number) => s + v * path.weights[i], 0);
    const c = result!.data.completeness as { sum: number };
    expect(integral).toBeCloseTo(c.sum, 3);
    expect(path.inputScore - path.baselineScore).toBeCloseTo(c.sum, 0);
    const baseline = await sharp(Buffer.from(await (await fetch(api(`api/baseline.png?key=${encodeURIComponent(String(result!.data.key))}`))).arrayBuffer())).raw().toBuffer();
    expect(Math.max(...baseline)).toBe(0);
  });

  it('draws deletion and insertion curves, panels on a shared scale and the grid as SVG', async () => {
    const results = (await readEvents(explainUrl({ baselines: 'black,blur:sigma=3' }))).filter((e) => e.event === 'result');
    const keys = results.map((r) => String(r.data.key)).join('~');
    const { body } = await getJson(`api/curves?keys=${encodeURIComponent(keys)}&steps=8`);
    expect(body.curves).toHaveLength(2);
    const { body: preds } = await getJson('api/images/i1/predictions');
    for (const c of body.curves) {
      expect(c.deletion.fractions).toEqual([0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1]);
      // Nothing removed yet: the model's own probability of the target.
      expect(c.deletion.scores[0]).toBeCloseTo(preds.predictions[0].probability, 5);
    }
    const { body: scale } = await getJson(`api/scale?keys=${encodeURIComponent(keys)}&viz=heat_map&sign=positive`);
    expect(scale.scale).toBeGreaterThan(0);
    const panel = await fetch(api(`api/panel.png?key=${encodeURIComponent(results[0]!.data.key as string)}&viz=heat_map&sign=positive&scale=${scale.scale}`));
    expect((await sharp(Buffer.from(await panel.arrayBuffer())).metadata()).width).toBe(64);
    const svg = await (await fetch(api(`api/export/grid.svg?keys=${encodeURIComponent(keys)}&viz=heat_map&sign=positive`))).text();
    expect(svg.match(/<image /g)).toHaveLength(3);
    expect(svg).toMatch(/blur\(sigma=3\)/);
  });

  it('adds shapes samples with masks and scores baselines over them with intervals', async () => {
    const { body } = await getJson('api/images/shapes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count: 3, seed: 5 }) });
    expect(body.images.every((i: { hasMask: boolean }) => i.hasMask)).toBe(true);
    const ids = body.images.map((i: { id: string }) => i.id);
    const mask = await sharp(Buffer.from(await (await fetch(api(`api/images/${ids[0]}/mask.png`))).arrayBuffer())).metadata();
    expect([mask.width, mask.height, mask.channels]).toEqual([64, 64, 4]);
    const events = await readEvents(api(`api/metrics?${new URLSearchParams({ images: ids.join('~'), baselines: 'black,blur', steps: '16', curveSteps: '4' })}`));
    const result = events.find((e) => e.event === 'result')!.data as { summary: Record<string, Record<string, { mean: number; low: number; high: number }>> };
    for (const b of ['black', 'blur']) {
      const share = result.summary[b]!.maskShare!;
      expect(share.low).toBeLessThanOrEqual(share.mean);
      expect(share.mean).toBeLessThanOrEqual(share.high);
    }
  });

  it('computes the metrics over images as lens compare does, with the command line that reproduces them', async () => {
    const params = new URLSearchParams({ images: 'i1~i2', baselines: 'black,blur', steps: '8', curveSteps: '4', viz: 'heat_map', sign: 'positive' });
    const events = await readEvents(api(`api/metrics?${params}`));
    const result = events.find((e) => e.event === 'result')!.data as { summary: Record<string, Record<string, { mean: number }>> };
    const { body } = await getJson(`api/compare-command?${params}`);
    expect(body).toEqual({
      command: `lens compare --model default --images ${BIRD} ${CAT} --baselines black,blur --steps 8 --rule gausslegendre --target top1 --curve-steps 4 --viz heat_map --sign positive --seed 0`,
      generated: 0,
    });
    const out = mkdtempSync(join(tmpdir(), 'studio-compare-'));
    const cli = await runLens([...String(body.command).split(' ').slice(1), '--out', out, '--json', '--no-progress']);
    expect(cli.code, cli.stderr).toBe(0);
    const theirs = JSON.parse(cli.stdout) as { summary: Record<string, Record<string, { mean: number }>> };
    for (const b of ['black', 'blur']) {
      for (const metric of ['relativeDelta', 'deletionAuc', 'insertionAuc']) expect(result.summary[b]![metric]!.mean, `${b} ${metric}`).toBeCloseTo(theirs.summary[b]![metric]!.mean, 4);
    }
  });

  it('bounds uploads, keeps them in a temp folder, and reports an unreadable image in the reply and the log', async () => {
    const big = await fetch(api('api/images?name=hopper.bmp'), { method: 'POST', body: readFileSync(HOPPER) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: string }).error).toMatch(/upload over the limit of 629146 bytes/);

    const sneaky = await getJson('api/images?name=..%2F..%2Fbird.bmp', { method: 'POST', body: readFileSync(BIRD) });
    expect(sneaky.status).toBe(200);
    const [result] = (await readEvents(explainUrl({ image: sneaky.body.images[0].id, baselines: 'black', steps: '8' }))).filter((e) => e.event === 'result');
    const { body: command } = await getJson(`api/export/command?key=${encodeURIComponent(String(result!.data.key))}`);
    const stored = String(command.command).split(' ')[2]!;
    expect(dirname(dirname(stored))).toBe(tmpdir());
    expect(basename(stored)).toMatch(/^[0-9a-f]{8}-bird\.bmp$/);

    const broken = await getJson('api/images?name=broken.png', { method: 'POST', body: Buffer.from('not a picture at all') });
    expect(broken.status).toBe(400);
    expect(broken.body.error).toMatch(/^cannot decode image broken\.png/);
    await expect.poll(() => studio.log()).toMatch(/POST \/api\/images failed: cannot decode image broken\.png/);
    expect((await getJson('api/state')).status).toBe(200);
  });

  it('reports a failed method in the stream and the log, and keeps serving', async () => {
    const events = await readEvents(explainUrl({ baselines: 'image:/no/such/baseline.png' }));
    expect(events.at(-1)).toMatchObject({ event: 'failure', data: { error: expect.stringMatching(/baseline\.png/) } });
    await expect.poll(() => studio.log()).toMatch(/explain failed: .*baseline\.png/);
    const unknown = await readEvents(explainUrl({ method: 'gradcamm' }));
    expect(unknown.at(-1)!.data.error).toMatch(/unknown method "gradcamm"/);
    const ok = await readEvents(explainUrl({ baselines: 'white', steps: '4' }));
    expect(ok.at(-1)!.event).toBe('done');
    const missing = await getJson('api/path?key=nothing');
    expect(missing).toEqual({ status: 404, body: { error: 'this attribution is no longer in the cache: explain again' } });
  });
});

describe('lens studio start-up', () => {
  it('fails with one line on an unknown model', async () => {
    const r = await runLens(['studio', '--model', '/no/such/model', '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^lens: .*\/no\/such\/model/);
  });

  it('fails with one line that suggests another --port when its port is taken (a second lens studio)', async () => {
    const port = new URL(studio.url).port;
    const r = await runLens(['studio', '--port', port]);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(`lens: cannot listen on 127.0.0.1:${port} (--port): the port is in use (another lens studio?); give another --port, or --port 0 for a free one`);
  });

  it('needs the printed token on a non-loopback host, and shows a dead server instead of failing', async () => {
    const labels = join(mkdtempSync(join(tmpdir(), 'studio-labels-')), 'labels.txt');
    writeFileSync(labels, 'round\nboxy\npointy\nspiky\nplus\n');
    const other = await startStudioCli(['--model', 'default', '--labels', labels, '--host', '0.0.0.0', '--server', '127.0.0.1:1', '--transport', 'rest', '--served-model', 'shapes']);
    try {
      expect(other.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/);
      const bare = new URL(other.url);
      const token = bare.searchParams.get('token')!;
      bare.search = '';
      expect((await fetch(new URL('api/state', bare))).status).toBe(401);
      const page = await fetch(other.url);
      expect(page.status).toBe(200);
      const cookie = page.headers.get('set-cookie')!.split(';')[0]!;
      const state = await fetch(new URL('api/state', bare), { headers: { cookie } });
      expect(state.status).toBe(200);
      const body = (await state.json()) as { served: unknown; servedError: string; local: { labels: string[] } };
      expect(body.local.labels).toEqual(['round', 'boxy', 'pointy', 'spiky', 'plus']);
      expect(body.served).toBeNull();
      expect(body.servedError).toMatch(/127\.0\.0\.1:1/);
      expect((await fetch(new URL(`api/state?token=${token}x`, bare))).status).toBe(401);
      await expect.poll(() => other.log()).toMatch(/served model shapes at 127\.0\.0\.1:1 is not available/);
    } finally {
      expect(await other.stop()).toBe(0);
    }
  });
});
