/**
 * The library parts the CLI, the studio, batch jobs and notebooks share: image files and masks
 * (image/files.ts), connection and model loading settings given as text, baseline lists, and the
 * explanation summary and CSV fields of report/.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitBaselineList } from '../src/attribution/baselines.js';
import type { Attribution } from '../src/attribution/types.js';
import { isLensError } from '../src/core/errors.js';
import { expandImagePaths, imageStem, loadMask, maskBeside } from '../src/image/files.js';
import { modelLoadFlags } from '../src/models/load-settings.js';
import { csvField } from '../src/report/csv.js';
import { attributionSummary, explanationSummary } from '../src/report/save.js';
import { connectionOptions, hostPort } from '../src/serving/connection.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-settings-'));
  await mkdir(join(dir, 'images'));
  const grey = (v: number) => sharp({ create: { width: 4, height: 4, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer();
  await writeFile(join(dir, 'images', 'b.png'), await grey(10));
  await writeFile(join(dir, 'images', 'a.jpg'), await sharp(await grey(20)).jpeg().toBuffer());
  // The mask: the left half white (inside), the right half black.
  const mask = Buffer.alloc(4 * 4, 0);
  for (let y = 0; y < 4; y++) mask[y * 4] = mask[y * 4 + 1] = 255;
  await writeFile(join(dir, 'images', 'b.mask.png'), await sharp(mask, { raw: { width: 4, height: 4, channels: 1 } }).png().toBuffer());
  await writeFile(join(dir, 'images', 'notes.txt'), 'not an image');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const code = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return isLensError(e) ? e.code : 'not a LensError';
  }
  return undefined;
};

describe('image files', () => {
  it('expands folders to their images, sorted, without masks or other files; URLs pass as they are', () => {
    const url = 'https://example.com/cat.jpg';
    expect(expandImagePaths([join(dir, 'images'), url])).toEqual([join(dir, 'images', 'a.jpg'), join(dir, 'images', 'b.png'), url]);
    expect(code(() => expandImagePaths([join(dir, 'missing.png')]))).toBe('NOT_FOUND');
    expect(imageStem('https://example.com/x/cat.photo.jpg?size=2')).toBe('cat.photo');
  });

  it('finds the mask beside an image and reads it as 0/1 at the size asked', async () => {
    expect(maskBeside(join(dir, 'images', 'a.jpg'))).toBeUndefined();
    const path = maskBeside(join(dir, 'images', 'b.png'));
    expect(path).toBe(join(dir, 'images', 'b.mask.png'));
    const mask = await loadMask(path!, [2, 2]);
    expect(Array.from(mask)).toEqual([1, 0, 1, 0]);
  });
});

describe('settings given as text', () => {
  it('turns connection settings into client options and refuses contradictions in one line', () => {
    expect(connectionOptions({ rest: true, header: ['Authorization=Bearer x'], hostHeader: 'm.example.com' })).toEqual({
      transport: 'rest',
      metadata: { authorization: 'Bearer x' },
      hostHeader: 'm.example.com',
    });
    expect(code(() => connectionOptions({ transport: 'grpc', rest: true }))).toBe('INVALID_ARGUMENT');
    expect(code(() => connectionOptions({ header: ['novalue'] }))).toBe('INVALID_ARGUMENT');
    expect(hostPort('[::1]:8500')).toBe('[::1]:8500');
    expect(code(() => hostPort('localhost'))).toBe('INVALID_ARGUMENT');
  });

  it('reads a checkpoint step as a number and keeps a prefix name as text', () => {
    expect(modelLoadFlags({ checkpoint: '12000', engine: 'tfjs' })).toEqual({ checkpoint: 12000, engine: 'tfjs' });
    expect(modelLoadFlags({ checkpoint: 'model.ckpt-5', inputTensor: 'x:0' })).toEqual({ checkpoint: 'model.ckpt-5', inputTensor: 'x:0' });
  });

  it('keeps key=value parameters with their baseline in a list', () => {
    expect(splitBaselineList('black, gaussian:sigma=0.2,samples=4,blur')).toEqual(['black', 'gaussian:sigma=0.2,samples=4', 'blur']);
  });
});

describe('explanation summaries', () => {
  const attribution: Attribution = {
    data: new Float32Array(3),
    height: 1,
    width: 1,
    channels: 3,
    method: 'occlusion',
    target: { index: 2, label: 'cat', score: 0.7, probability: 0.7 },
    output: 'probability',
    gradientEvaluations: 0,
    forwardEvaluations: 5,
    details: { window: 1 },
  };

  it('gives settings a method does not have as null, in the short and the saved form alike', () => {
    const short = explanationSummary(attribution);
    expect(short).toEqual({
      target: { index: 2, label: 'cat', probability: 0.7, score: 0.7 },
      output: 'probability',
      method: 'occlusion',
      baseline: null,
      steps: null,
      rule: null,
      completeness: null,
      gradientEvaluations: 0,
      forwardEvaluations: 5,
      mapErrorEstimate: null,
    });
    const saved = attributionSummary(attribution, 'x.png');
    expect(saved).toMatchObject({ image: 'x.png', ...short, details: { window: 1 }, shape: [1, 1, 3] });
    expect(saved).not.toHaveProperty('data');
  });

  it('quotes CSV fields that hold quotes, commas or line breaks, and leaves missing values empty', () => {
    expect(['a "b", c', 'x\ny', 'plain', 1.5, undefined, null].map(csvField)).toEqual(['"a ""b"", c"', '"x\ny"', 'plain', '1.5', '', '']);
  });
});
