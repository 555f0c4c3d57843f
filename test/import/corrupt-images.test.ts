import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLensError } from '../../src/core/errors.js';
import { decodePixels } from '../../src/image/index.js';
import { SHARED } from '../helpers/cli.js';

describe('corrupt images', () => {
  it('a damaged JPEG header gives one line naming the file, each libvips reason once', async () => {
    const jpeg = readFileSync(join(SHARED, 'images/parrot.jpg'));
    for (let i = 20; i < 2000; i += 3) jpeg[i] = (i * 37) & 0xff;
    const e = await decodePixels(jpeg, { source: 'parrot-damaged.jpg', size: [32, 32] }).catch((x: unknown) => x);
    expect(isLensError(e, 'IMAGE_DECODE')).toBe(true);
    // libvips says "VipsJpeg: Corrupt JPEG data ...\nVipsJpeg: Unsupported marker ..." three times over.
    expect((e as Error).message).toBe(
      'cannot decode image parrot-damaged.jpg: Input buffer has corrupt header: Corrupt JPEG data: 289 extraneous bytes before marker 0xf3; Unsupported marker type 0xf3',
    );
  });

  it('a truncated JPEG names the file and the reason', async () => {
    const jpeg = readFileSync(join(SHARED, 'images/parrot.jpg'));
    await expect(decodePixels(jpeg.subarray(0, jpeg.length >> 1), { source: 'half.jpg' })).rejects.toThrow(/^cannot decode image half\.jpg: premature end of JPEG image$/);
  });
});
