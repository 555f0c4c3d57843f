import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBmp } from '../../src/image/bmp.js';
import { decodePixels } from '../../src/image/index.js';
import { SHARED } from '../helpers/cli.js';

/** A BMP with a 40-byte info header; rows given top first as RGB triples. */
function makeBmp(rows: number[][][], bpp: 24 | 32 | 8, options: { topDown?: boolean; palette?: number[][] } = {}): Buffer {
  const height = rows.length;
  const width = rows[0]!.length;
  const stride = Math.ceil((width * bpp) / 32) * 4;
  const paletteBytes = bpp === 8 ? (options.palette?.length ?? 0) * 4 : 0;
  const offset = 14 + 40 + paletteBytes;
  const buf = Buffer.alloc(offset + stride * height);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(options.topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(bpp, 28);
  if (bpp === 8) {
    buf.writeUInt32LE(options.palette!.length, 46);
    options.palette!.forEach(([r, g, b], i) => buf.set([b!, g!, r!, 0], 54 + 4 * i));
  }
  rows.forEach((row, y) => {
    const at = offset + (options.topDown ? y : height - 1 - y) * stride;
    row.forEach((px, x) => {
      if (bpp === 24) buf.set([px[2]!, px[1]!, px[0]!], at + 3 * x);
      else if (bpp === 32) buf.set([px[2]!, px[1]!, px[0]!, 255], at + 4 * x);
      else buf[at + x] = px[0]!; // palette index
    });
  });
  return buf;
}

describe('BMP decoding (libvips has no BMP loader)', () => {
  const rows = [
    [[255, 0, 0], [0, 255, 0], [0, 0, 255]],
    [[10, 20, 30], [40, 50, 60], [70, 80, 90]],
  ];
  const flat = rows.flat(2);

  it('decodes 24-bit bottom-up rows with padding, 32-bit top-down and 8-bit palettes', () => {
    expect(Array.from(decodeBmp(makeBmp(rows, 24)).data)).toEqual(flat);
    expect(Array.from(decodeBmp(makeBmp(rows, 32, { topDown: true })).data)).toEqual(flat);
    const palette = [[1, 2, 3], [200, 100, 50]];
    const indexed = decodeBmp(makeBmp([[[1], [0]], [[0], [1]]], 8, { palette }));
    expect(Array.from(indexed.data)).toEqual([200, 100, 50, 1, 2, 3, 1, 2, 3, 200, 100, 50]);
  });

  it('feeds decodePixels (resizing included) and reads the shared photos', async () => {
    const px = await decodePixels(makeBmp(rows, 24), { source: 'tiny.bmp' });
    expect([px.width, px.height, Array.from(px.data.slice(0, 6))]).toEqual([3, 2, [255, 0, 0, 0, 255, 0]]);
    const cat = decodeBmp(readFileSync(join(SHARED, 'images/cat.bmp')));
    expect([cat.width, cat.height]).toEqual([512, 341]);
    const resized = await decodePixels(readFileSync(join(SHARED, 'images/bird.bmp')), { size: [32, 32], resize: 'squash' });
    expect([resized.width, resized.height, resized.data.length]).toEqual([32, 32, 32 * 32 * 3]);
  });

  it('says why a BMP cannot be decoded', async () => {
    const truncated = makeBmp(rows, 24).subarray(0, 60);
    expect(() => decodeBmp(truncated, 'cut.bmp')).toThrow(/cannot decode BMP cut\.bmp: truncated/);
    const rle = makeBmp(rows, 24);
    rle.writeUInt32LE(1, 30);
    expect(() => decodeBmp(rle, 'rle.bmp')).toThrow(/compression 1 is not supported/);
    await expect(decodePixels(truncated, { source: 'cut.bmp' })).rejects.toThrow(/truncated/);
  });

  it('rejects size fields that disagree with the pixel data (a height of 0xFFFFFFFF read as one top-down row)', async () => {
    const photo = readFileSync(join(SHARED, 'images/cat.bmp'));
    photo.writeUInt32LE(0xffffffff, 22);
    await expect(decodePixels(photo, { source: 'cat.bmp' })).rejects.toThrow(
      'cannot decode BMP cat.bmp: impossible size 512x-1 (height field 0xffffffff): that needs 1536 bytes of pixels but the file holds 523776',
    );
    // Without an image-size field the pixel bytes in the file are compared instead.
    const small = makeBmp(rows, 24);
    small.writeInt32LE(-1, 22);
    expect(() => decodeBmp(small, 'small.bmp')).toThrow(/impossible size 3x-1 .*needs 12 bytes of pixels but the file holds 24/);
    const wide = makeBmp(rows, 24);
    wide.writeInt32LE(0x7fff, 18);
    expect(() => decodeBmp(wide, 'wide.bmp')).toThrow(/truncated/);
  });
});
