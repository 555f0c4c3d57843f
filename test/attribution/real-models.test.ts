/**
 * Completeness on real trained models loaded with loadImageModel. These run on the default
 * backend (wasm), whose conv input gradients come from src/engines/tfjs/gradients/.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engines/tfjs/index.js';
import { integratedGradients, maskScores, meanInterval } from '../../src/attribution/index.js';
import { generateShapes } from '../../src/datasets/shapes.js';
import { loadPixels } from '../../src/image/index.js';
import { loadImageModel } from '../../src/models/load.js';
import { SHARED } from '../helpers/cli.js';

beforeAll(async () => {
  await initBackend();
});

describe('ResNet-8 (CIFAR-10, Keras HDF5)', () => {
  it('IG completeness delta is under 1% of |F(x) - F(x\')|', async () => {
    const model = await loadImageModel(join(SHARED, 'models-external/mlcommons-resnet8-cifar10/pretrainedResnet.h5'));
    const image = await loadPixels(join(SHARED, 'images/parrot.jpg'), { size: [32, 32] });
    const attr = await integratedGradients(model, image, { steps: 256, rule: 'gausslegendre', baseline: 'black', batchSize: 64 });
    expect(attr.output).toBe('logit');
    // Guard against a vacuous pass: the logit really moves along the path.
    expect(Math.abs(attr.completeness!.inputScore - attr.completeness!.baselineScore)).toBeGreaterThan(1);
    expect(attr.completeness!.relative).toBeLessThan(0.01);
    model.dispose();
  });
});

describe('the bundled shapes model (models/shapes-resnet)', () => {
  it('IG with a black baseline puts more than 70% of positive attribution inside the object mask', async () => {
    const model = await loadImageModel('default');
    const [size] = model.inputShape;
    // A smaller sample than the benchmark's 100 images (bench/attribution-quality.bench.ts).
    const samples = generateShapes({ count: 20, seed: 4242, size });
    const shares: number[] = [];
    for (const s of samples) {
      const image = { data: s.pixels, height: s.height, width: s.width, channels: 3 };
      const attr = await integratedGradients(model, image, { steps: 64, baseline: 'black', batchSize: 32 });
      shares.push(maskScores(attr, s.mask).positiveShareInMask);
    }
    expect(meanInterval(shares).mean).toBeGreaterThan(0.7);
    model.dispose();
  });

  it('IG completeness delta is under 1% of |F(x) - F(x\')|', async () => {
    const model = await loadImageModel('default');
    const [size] = model.inputShape;
    for (const s of generateShapes({ count: 5, seed: 4242, size })) {
      const image = { data: s.pixels, height: s.height, width: s.width, channels: 3 };
      const attr = await integratedGradients(model, image, { steps: 256, baseline: 'black', batchSize: 64 });
      expect(Math.abs(attr.completeness!.inputScore - attr.completeness!.baselineScore)).toBeGreaterThan(1);
      expect(attr.completeness!.relative).toBeLessThan(0.01);
    }
    model.dispose();
  });
});
