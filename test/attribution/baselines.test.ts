/**
 * Baselines as a user meets them: the pixels of each kind (blur against SciPy, noise against the
 * formula drawn from the same seed, the model-space zero against the published preprocessing
 * constants), the names reports print, padding left alone, and `--baseline` text parsed or refused
 * with the reason.
 */
import { describe, expect, it } from 'vitest';
import { describeBaseline, makeBaselines, modelZeroPixel, parseBaseline, resolveBaseline, splitBaselineList, type BaselineSpec } from '../../src/attribution/baselines.js';
import type { ImageInput } from '../../src/attribution/types.js';
import { isLensError, type LensErrorCode } from '../../src/core/errors.js';
import { seededRandom } from '../../src/core/random.js';

/** `run` throws a LensError with this stable code (what the CLI and servers map) and message. */
function refuses(run: () => unknown, code: LensErrorCode, message: string | RegExp): void {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(isLensError(error, code), String(error)).toBe(true);
  if (typeof message === 'string') expect((error as Error).message).toBe(message);
  else expect((error as Error).message).toMatch(message);
}

const rgbModel = (h: number, w: number) => ({ inputShape: [h, w, 3] as const, preprocessing: 'symmetric' as const });

/** 6 x 7 x 3, pixel values (37 i) mod 256 in HWC order. */
const PATTERN: ImageInput = { data: Float32Array.from({ length: 6 * 7 * 3 }, (_, i) => (37 * i) % 256), height: 6, width: 7, channels: 3 };
const at = (data: Float32Array, y: number, x: number, c: number) => data[(y * PATTERN.width + x) * 3 + c]!;

/** A mid-grey 32 x 32 image: noise of a tenth of the range is never clipped there. */
const GREY: ImageInput = { data: new Float32Array(32 * 32 * 3).fill(127.5), height: 32, width: 32, channels: 3 };

describe('baseline pixels', () => {
  it('blur equals SciPy gaussian_filter (reflect, truncate 4) per channel', () => {
    // scipy.ndimage.gaussian_filter(PATTERN, sigma=(s, s, 0), mode='reflect', truncate=4.0) at
    // (y, x, c) = (0,0,0), (0,6,1), (5,0,2), (5,6,0), (2,3,1), (3,4,2); SciPy 1.17.
    const probes = [
      [0, 0, 0],
      [0, 6, 1],
      [5, 0, 2],
      [5, 6, 0],
      [2, 3, 1],
      [3, 4, 2],
    ] as const;
    const scipy = {
      1.5: [79.7735, 161.818, 145.5898, 156.5055, 124.0834, 117.3091],
      // The default sigma, 5 pixels: its kernel (radius 20) is wider than the image.
      5: [121.2044, 127.8269, 124.8964, 126.6433, 124.2987, 124.7276],
    };
    const model = rgbModel(6, 7);
    const blurred = makeBaselines(model, PATTERN, { kind: 'blur', sigma: 1.5 }, seededRandom(0));
    const byDefault = makeBaselines(model, PATTERN, 'blur', seededRandom(0));
    expect([blurred.description, byDefault.description]).toEqual(['blur(sigma=1.5)', 'blur(sigma=5)']);
    probes.forEach(([y, x, c], i) => {
      expect(at(blurred.images[0]!, y, x, c)).toBeCloseTo(scipy[1.5][i]!, 3);
      expect(at(byDefault.images[0]!, y, x, c)).toBeCloseTo(scipy[5][i]!, 3);
    });
    // sigma 0 is the image itself; a negative sigma is refused.
    expect(Array.from(makeBaselines(model, PATTERN, { kind: 'blur', sigma: 0 }, seededRandom(0)).images[0]!)).toEqual(Array.from(PATTERN.data));
    refuses(() => makeBaselines(model, PATTERN, { kind: 'blur', sigma: -1 }, seededRandom(0)), 'INVALID_ARGUMENT', 'blur baseline sigma must be >= 0, got -1');
  });

  it('gaussian noise is the image plus sigma * 255 times standard normal draws, clipped to 0..255', () => {
    const model = rgbModel(32, 32);
    const { images, description } = makeBaselines(model, GREY, { kind: 'gaussian', sigma: 0.1, samples: 2 }, seededRandom(7));
    expect(description).toBe('gaussian(sigma=0.1,samples=2)');
    expect(images).toHaveLength(2);
    const draws = seededRandom(7);
    for (const image of images) {
      for (let i = 0; i < image.length; i++) expect(image[i]).toBeCloseTo(127.5 + draws.normal() * 0.1 * 255, 3);
    }
    // Its spread is sigma * 255 = 25.5 grey levels (3072 draws: within 5 %).
    const diff = Array.from(images[0]!, (v) => v - 127.5);
    const std = Math.sqrt(diff.reduce((s, d) => s + d * d, 0) / diff.length);
    expect(std).toBeGreaterThan(25.5 * 0.95);
    expect(std).toBeLessThan(25.5 * 1.05);
    // Far from grey, the noise is clipped to the pixel range.
    const white: ImageInput = { ...GREY, data: new Float32Array(GREY.data.length).fill(250) };
    const clipped = makeBaselines(model, white, { kind: 'gaussian', sigma: 0.5 }, seededRandom(1)).images[0]!;
    expect(Math.max(...clipped)).toBe(255);
    expect(Math.min(...clipped)).toBe(0);
    expect(makeBaselines(model, GREY, { kind: 'gaussian', sigma: 0 }, seededRandom(1)).images[0]).toEqual(GREY.data);
    refuses(() => makeBaselines(model, GREY, { kind: 'gaussian', sigma: -0.1 }, seededRandom(1)), 'INVALID_ARGUMENT', 'gaussian baseline sigma must be >= 0, got -0.1');
    expect(makeBaselines(model, GREY, 'gaussian', seededRandom(1)).description).toBe('gaussian(sigma=0.1)');
    expect(describeBaseline({ kind: 'gaussian', sigma: 0.3, samples: 1 })).toBe('gaussian(sigma=0.3)');
  });

  it('uniform noise draws 255 * uniform per value, one image per sample', () => {
    const model = rgbModel(32, 32);
    const { images, description } = makeBaselines(model, GREY, { kind: 'uniform', samples: 3 }, seededRandom(3));
    expect(description).toBe('uniform(samples=3)');
    expect(images).toHaveLength(3);
    const draws = seededRandom(3);
    for (const image of images) for (let i = 0; i < image.length; i++) expect(image[i]).toBeCloseTo(draws.uniform() * 255, 3);
    expect(makeBaselines(model, GREY, 'uniform', seededRandom(3)).description).toBe('uniform');
    expect(describeBaseline({ kind: 'uniform', samples: 1 })).toBe('uniform');
    for (const samples of [0, -2, 1.5]) {
      refuses(() => makeBaselines(model, GREY, { kind: 'uniform', samples }, seededRandom(3)), 'INVALID_ARGUMENT', `uniform baseline samples must be a positive integer, got ${samples}`);
      refuses(() => makeBaselines(model, GREY, { kind: 'gaussian', samples }, seededRandom(3)), 'INVALID_ARGUMENT', `gaussian baseline samples must be a positive integer, got ${samples}`);
    }
  });

  it('constant baselines fill every pixel of every channel', () => {
    const model = { inputShape: [6, 7, 3] as const, preprocessing: 'caffe' as const };
    const kinds: [BaselineSpec, number[]][] = [
      ['black', [0, 0, 0]],
      ['white', [255, 255, 255]],
      // Keras' caffe preprocessing subtracts the ImageNet mean [103.939, 116.779, 123.68] (BGR).
      ['zero', [123.68, 116.779, 103.939]],
    ];
    expect(makeBaselines(model, PATTERN, 'maxdist', seededRandom(0)).description).toBe('maxdist');
    for (const [spec, pixel] of kinds) {
      const { images, description } = makeBaselines(model, PATTERN, spec, seededRandom(0));
      expect(description).toBe(spec);
      expect(images).toHaveLength(1);
      expect(images[0]).toHaveLength(PATTERN.data.length);
      images[0]!.forEach((v, i) => expect(v).toBeCloseTo(pixel[i % 3]!, 3));
    }
  });

  it('the model-space zero follows the preprocessing and the channel count', () => {
    const rgb = { inputShape: [8, 8, 3] as const };
    // torchvision's normalisation: mean (0.485, 0.456, 0.406) of the 0..1 range.
    modelZeroPixel({ ...rgb, preprocessing: 'torch' }).forEach((v, c) => expect(v).toBeCloseTo([0.485, 0.456, 0.406][c]! * 255, 3));
    expect(modelZeroPixel({ ...rgb, preprocessing: 'unit' })).toEqual([0, 0, 0]);
    expect(modelZeroPixel({ ...rgb, preprocessing: 'bgr' })).toEqual([0, 0, 0]);
    // A greyscale model (MNIST) has one channel: its zero is one grey level.
    expect(modelZeroPixel({ inputShape: [28, 28, 1], preprocessing: 'symmetric' })).toEqual([127.5]);
    const digit: ImageInput = { data: new Float32Array(28 * 28).fill(30), height: 28, width: 28, channels: 1 };
    expect(makeBaselines({ inputShape: [28, 28, 1], preprocessing: 'symmetric' }, digit, 'zero', seededRandom(0)).images[0]).toEqual(new Float32Array(28 * 28).fill(127.5));
  });

  it('a user image is copied, and refused when its shape differs from the input', () => {
    const model = rgbModel(6, 7);
    const reference = { ...PATTERN, data: new Float32Array(PATTERN.data) };
    const { images, description } = makeBaselines(model, PATTERN, { kind: 'image', image: reference, name: 'grey.png' }, seededRandom(0));
    expect(description).toBe('grey.png');
    expect(images[0]).toEqual(PATTERN.data);
    reference.data[0] = 99;
    expect(images[0]![0]).toBe(0);
    expect(describeBaseline({ kind: 'image', image: reference })).toBe('image');
    const small = { data: new Float32Array(2 * 2 * 3), height: 2, width: 2, channels: 3 };
    refuses(() => makeBaselines(model, PATTERN, { kind: 'image', image: small, name: 'small.png' }, seededRandom(0)), 'SHAPE_MISMATCH', 'baseline image small.png is 2x2x3, the input is 6x7x3');
    expect(() => makeBaselines(model, PATTERN, { kind: 'image', image: small }, seededRandom(0))).toThrow('baseline image is 2x2x3, the input is 6x7x3');
    for (const other of [{ ...PATTERN, height: 7, width: 6 }, { ...PATTERN, width: 6 }, { ...PATTERN, height: 5 }, { ...PATTERN, channels: 1 }]) {
      expect(() => makeBaselines(model, PATTERN, { kind: 'image', image: other }, seededRandom(0))).toThrow(/^baseline image is/);
    }
  });

  it('an average holds every part in order, and needs a part', () => {
    const model = rgbModel(32, 32);
    const spec: BaselineSpec = { kind: 'average', of: ['black', { kind: 'uniform', samples: 2 }, { kind: 'blur', sigma: 2 }] };
    const { images, description } = makeBaselines(model, GREY, spec, seededRandom(4));
    expect(description).toBe('black+uniform(samples=2)+blur(sigma=2)');
    expect(images).toHaveLength(4);
    expect(images[0]).toEqual(new Float32Array(GREY.data.length));
    const draws = seededRandom(4);
    expect(images[1]![0]).toBeCloseTo(draws.uniform() * 255, 3);
    expect(images[3]).toEqual(GREY.data); // blurring a flat image changes nothing
    refuses(() => makeBaselines(model, GREY, { kind: 'average', of: [] }, seededRandom(0)), 'INVALID_ARGUMENT', 'an averaged baseline needs at least one baseline');
  });

  it('every kind equals the input on padding', () => {
    // A 4 x 4 photo letterboxed into 8 x 4: rows 0-1 and 6-7 are padding (grey 114 as the input has it).
    const data = new Float32Array(8 * 4 * 3).fill(114);
    for (let i = 2 * 4 * 3; i < 6 * 4 * 3; i++) data[i] = (13 * i) % 256;
    const image: ImageInput = {
      data,
      height: 8,
      width: 4,
      channels: 3,
      geometry: { resize: 'pad', original: { height: 4, width: 4 }, input: { height: 8, width: 4 }, content: { top: 2, left: 0, height: 4, width: 4 }, visible: { top: 0, left: 0, height: 4, width: 4 } },
    };
    const padding = (i: number) => i < 2 * 4 * 3 || i >= 6 * 4 * 3;
    for (const spec of ['black', 'white', 'maxdist', 'uniform', 'gaussian', 'blur'] as const) {
      const baseline = makeBaselines(rgbModel(8, 4), image, spec, seededRandom(0)).images[0]!;
      baseline.forEach((v, i) => {
        if (padding(i)) expect(v, `${spec} at ${i}`).toBe(114);
      });
      expect(baseline.some((v, i) => !padding(i) && v !== data[i])).toBe(true);
    }
  });
});

describe('baseline text', () => {
  it('parses names, parameters, files and averages, ignoring case and spaces', () => {
    expect(parseBaseline(' Black ')).toBe('black');
    expect(parseBaseline('maxdist')).toBe('maxdist');
    expect(parseBaseline('blur:sigma=3')).toEqual({ kind: 'blur', sigma: 3 });
    expect(parseBaseline('uniform:samples=4')).toEqual({ kind: 'uniform', samples: 4 });
    expect(parseBaseline('gaussian: sigma = 0.2 , samples = 2')).toEqual({ kind: 'gaussian', sigma: 0.2, samples: 2 });
    expect(parseBaseline('black + white')).toEqual({ kind: 'average', of: ['black', 'white'] });
    expect(parseBaseline('file:refs/grey.png')).toEqual({ kind: 'file', path: 'refs/grey.png' });
    expect(parseBaseline('refs/grey.png')).toEqual({ kind: 'file', path: 'refs/grey.png' });
    expect(parseBaseline('grey.png+blur:sigma=2')).toEqual({ kind: 'average', of: [{ kind: 'file', path: 'grey.png' }, { kind: 'blur', sigma: 2 }] });
  });

  it('refuses what it cannot read, saying why', () => {
    refuses(() => parseBaseline(''), 'INVALID_ARGUMENT', 'empty baseline name');
    refuses(() => parseBaseline('purple'), 'INVALID_ARGUMENT', 'unknown baseline "purple": expected black, white, zero, uniform, gaussian, blur, maxdist, image:PATH, or several joined with +');
    // A path is a file only without a colon: "name:..." must be a known baseline.
    refuses(() => parseBaseline('grey:refs/x.png'), 'INVALID_ARGUMENT', /^unknown baseline "grey:refs\/x\.png"/);
    expect(() => parseBaseline('purple:sigma=1')).toThrow('unknown baseline "purple:sigma=1"');
    for (const kv of ['sigma', 'sigma=', '=2', 'sigma=soft', 'sigma=Infinity']) {
      refuses(() => parseBaseline(`blur:${kv}`), 'INVALID_ARGUMENT', `baseline "blur:${kv}": parameter "${kv}" is not key=number`);
    }
    refuses(() => parseBaseline('blur:radius=3'), 'INVALID_ARGUMENT', 'baseline blur takes no parameter "radius" (it takes sigma)');
    expect(() => parseBaseline('uniform:sigma=3')).toThrow('baseline uniform takes no parameter "sigma" (it takes samples)');
    expect(() => parseBaseline('gaussian:radius=3')).toThrow('baseline gaussian takes no parameter "radius" (it takes sigma, samples)');
    for (const name of ['black', 'white', 'zero', 'maxdist']) {
      expect(() => parseBaseline(`${name}:samples=2`)).toThrow(new RegExp(`^baseline ${name} takes no parameter "samples"$`));
    }
  });

  it('splits a comma-separated list, keeping the parameters of each baseline with it', () => {
    expect(splitBaselineList('black,gaussian:sigma=0.2,samples=4,blur')).toEqual(['black', 'gaussian:sigma=0.2,samples=4', 'blur']);
    expect(splitBaselineList(' black , , blur:sigma=3 ,white ')).toEqual(['black', 'blur:sigma=3', 'white']);
    // A key=value after a baseline without parameters, or first, stands on its own (and is refused by parseBaseline).
    expect(splitBaselineList('samples=2,black,sigma=1')).toEqual(['samples=2', 'black', 'sigma=1']);
    expect(splitBaselineList('uniform:samples=2,Sigma=1,x.png')).toEqual(['uniform:samples=2,Sigma=1', 'x.png']);
    expect(splitBaselineList('')).toEqual([]);
  });

  it('resolves the files it names, keeping parameters and averages', async () => {
    const loaded: string[] = [];
    const load = async (path: string) => {
      loaded.push(path);
      return PATTERN;
    };
    expect(await resolveBaseline('white', load)).toBe('white');
    expect(await resolveBaseline({ kind: 'blur', sigma: 2 }, load)).toEqual({ kind: 'blur', sigma: 2 });
    expect(await resolveBaseline(parseBaseline('a.png+gaussian:sigma=0.3+image:b.png'), load)).toEqual({
      kind: 'average',
      of: [{ kind: 'image', image: PATTERN, name: 'a.png' }, { kind: 'gaussian', sigma: 0.3 }, { kind: 'image', image: PATTERN, name: 'b.png' }],
    });
    expect(loaded).toEqual(['a.png', 'b.png']);
  });
});
