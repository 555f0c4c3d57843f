/**
 * The phase plan of a convolution's input gradient (src/graph/conv-geometry.ts), checked in plain
 * arithmetic against the definition dx[i] = sum over o, k with o*s - top + k*d = i of dy[o] * w[k],
 * over every small kernel, stride, dilation, size and padding (tfjs and TensorFlow take either a
 * stride or a dilation above 1, not both).
 */
import { describe, expect, it } from 'vitest';
import { planInputGradientAxis } from '../../src/graph/conv-geometry.js';

function definition(dy: number[], w: number[], s: number, d: number, top: number, size: number): number[] {
  const dx = new Array<number>(size).fill(0);
  dy.forEach((g, o) =>
    w.forEach((wk, k) => {
      const i = o * s - top + k * d;
      if (i >= 0 && i < size) dx[i]! += g * wk;
    }),
  );
  return dx;
}

/** The plan carried out: per phase a stride-1 correlation of padded dy with the flipped taps, phases interleaved, input cut out. */
function viaPlan(dy: number[], w: number[], s: number, d: number, top: number, size: number): number[] {
  const plan = planInputGradientAxis(w.length, s, d, top, size, dy.length);
  const padded = (t: number) => dy[t - plan.before] ?? 0;
  const extent = (plan.taps - 1) * d + 1;
  const count = plan.before + dy.length + plan.after - extent + 1;
  const full = new Array<number>(count * s).fill(0);
  for (let r = 0; r < plan.phases; r++) {
    for (let q = 0; q < count; q++) {
      let z = 0;
      for (let jj = 0; jj < plan.taps; jj++) z += padded(q + jj * d) * (w[(plan.taps - 1 - jj) * s + r] ?? 0);
      full[q * s + r] = z;
    }
  }
  expect(plan.sliceStart + size).toBeLessThanOrEqual(full.length);
  return full.slice(plan.sliceStart, plan.sliceStart + size);
}

describe('planInputGradientAxis', () => {
  it('lays out the input gradient of every small convolution as phases of a stride-1 correlation', () => {
    let checked = 0;
    for (let k = 1; k <= 5; k++)
      for (const [s, d] of [[1, 1], [2, 1], [3, 1], [1, 2], [1, 3]] as const)
        for (let size = 1; size <= 9; size++)
          for (let top = 0; top <= 3; top++)
            for (let bottom = 0; bottom <= 3; bottom++) {
              const out = Math.floor((size + top + bottom - ((k - 1) * d + 1)) / s) + 1;
              if (out < 1) continue;
              const dy = Array.from({ length: out }, (_, o) => (o % 3) - 0.5 + o / 7);
              const w = Array.from({ length: k }, (_, j) => 1 + j * j * 0.25 - j * 0.5);
              const expected = definition(dy, w, s, d, top, size);
              const got = viaPlan(dy, w, s, d, top, size);
              got.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 10));
              checked++;
            }
    expect(checked).toBeGreaterThan(1000);
  });

  it('gives the flipped stride-1 convolution its (k-1)*d - pad paddings, and a strided 1x1 convolution one phase', () => {
    // 3 taps, dilation 2, pads 1 / 3 over 6 pixels: 6 outputs.
    expect(planInputGradientAxis(3, 1, 2, 1, 6, 6)).toMatchObject({ taps: 3, phases: 1, before: 3, after: 1, sliceStart: 0 });
    // 1x1, stride 2, no padding over 7 pixels: 4 outputs, placed on every other pixel.
    expect(planInputGradientAxis(1, 2, 1, 0, 7, 4)).toMatchObject({ taps: 1, phases: 1, before: 0, after: 0, sliceStart: 0 });
  });
});
