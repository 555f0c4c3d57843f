/**
 * The image decoding kernels registered for converted graphs (DecodeJpeg & co.): real JPEG, PNG,
 * GIF and BMP bytes, TensorFlow's channel rules, decoding by content, and clear errors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImageBytes } from '../../src/engines/tfjs/image-ops.js';
import { sniffImageFormat } from '../../src/image/format.js';
import { encodePng } from '../../src/image/index.js';
import { isLensError } from '../../src/core/errors.js';
import { SHARED } from '../helpers/cli.js';

/** A 4x2 RGB picture with distinct colours. */
const W = 4;
const H = 2;
const rgb = Float32Array.from({ length: W * H * 3 }, (_, i) => (i * 37) % 256);

describe('decodeImageBytes', () => {
  it('decodes PNG exactly, as RGB, grey and RGBA', async () => {
    const png = await encodePng({ data: rgb, height: H, width: W, channels: 3 });
    expect(sniffImageFormat(png)).toBe('png');
    const img = await decodeImageBytes(png, 3, 'DecodePng');
    expect([img.height, img.width, img.channels]).toEqual([H, W, 3]);
    expect(Array.from(img.data)).toEqual(Array.from(rgb));
    const native = await decodeImageBytes(png, 0, 'DecodePng');
    expect(native.channels).toBe(3);
    const rgba = await decodeImageBytes(png, 4, 'DecodePng');
    expect(rgba.channels).toBe(4);
    expect(rgba.data[3]).toBe(255);
    expect(Array.from(rgba.data.subarray(0, 3))).toEqual(Array.from(rgb.subarray(0, 3)));
    const grey = await decodeImageBytes(png, 1, 'DecodePng');
    expect(grey.channels).toBe(1);
    expect(grey.data.length).toBe(W * H);
  });

  it('decodes a real JPEG photo like sharp (libjpeg-turbo) and keeps its size', async () => {
    const bytes = readFileSync(join(SHARED, 'images/hot_dog.jpg'));
    expect(sniffImageFormat(bytes)).toBe('jpeg');
    const img = await decodeImageBytes(bytes, 3, 'DecodeJpeg');
    const meta = await sharp(bytes).metadata();
    expect([img.height, img.width, img.channels]).toEqual([meta.height, meta.width, 3]);
    const ref = await sharp(bytes).removeAlpha().raw().toBuffer();
    expect(Buffer.from(img.data).equals(ref)).toBe(true);
  });

  it('decodes by content as TensorFlow 2 does: a PNG given to DecodeJpeg, a grey JPEG expanded to RGB', async () => {
    const png = await encodePng({ data: rgb, height: H, width: W, channels: 3 });
    expect((await decodeImageBytes(png, 3, 'DecodeJpeg')).width).toBe(W);
    const grey = await sharp(Buffer.alloc(W * H, 128), { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 100 }).toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const asRgb = await decodeImageBytes(grey, 3, 'DecodeJpeg');
    expect(asRgb.channels).toBe(3);
    expect(Math.abs(asRgb.data[0]! - 128)).toBeLessThanOrEqual(1);
    expect(asRgb.data[0]).toBe(asRgb.data[1]);
    expect((await decodeImageBytes(grey, 0, 'DecodeJpeg')).channels).toBe(1);
  });

  it('decodes BMP (which libvips cannot) and GIF', async () => {
    const bmp = readFileSync(join(SHARED, 'images/cat.bmp'));
    const img = await decodeImageBytes(bmp, 3, 'DecodeImage');
    expect(img.channels).toBe(3);
    expect(img.width).toBeGreaterThan(10);
    const gif = await sharp(Buffer.from(Uint8Array.from(rgb)), { raw: { width: W, height: H, channels: 3 } }).gif().toBuffer();
    expect(sniffImageFormat(gif)).toBe('gif');
    const decoded = await decodeImageBytes(gif, 0, 'DecodeGif', true);
    expect([decoded.frames, decoded.height, decoded.width, decoded.channels]).toEqual([1, H, W, 3]);
  });

  it('DecodeJpeg takes a PNG exactly and a still GIF, but a BMP only through DecodeBmp/DecodeImage, as TensorFlow', async () => {
    const png = await encodePng({ data: rgb, height: H, width: W, channels: 3 });
    expect(Buffer.from((await decodeImageBytes(png, 3, 'DecodeJpeg')).data).equals(Buffer.from(rgb))).toBe(true);
    const gif = await sharp(Buffer.from(Uint8Array.from(rgb)), { raw: { width: W, height: H, channels: 3 } }).gif().toBuffer();
    const fromGif = await decodeImageBytes(gif, 3, 'DecodeJpeg');
    expect([fromGif.height, fromGif.width, fromGif.channels]).toEqual([H, W, 3]);
    const bmp = readFileSync(join(SHARED, 'images/cat.bmp'));
    await expect(decodeImageBytes(bmp, 3, 'DecodeJpeg')).rejects.toThrow(
      'Trying to decode BMP format using a wrong op. Use `decode_bmp` or `decode_image` instead. Op used: DecodeJpeg',
    );
    expect((await decodeImageBytes(bmp, 3, 'DecodeBmp')).channels).toBe(3);
  });

  it('refuses bytes that are no image, and bad channel counts, naming the op', async () => {
    for (const [bytes, channels, pattern] of [
      [new TextEncoder().encode('not an image at all'), 3, /DecodeJpeg: unknown image file format/],
      [Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]), 3, /DecodeJpeg: cannot decode the JPEG image/],
      [await encodePng({ data: rgb, height: H, width: W, channels: 3 }), 2, /channels must be 0, 1, 3 or 4/],
    ] as const) {
      const e = await decodeImageBytes(bytes, channels, 'DecodeJpeg').catch((err: unknown) => err);
      expect(isLensError(e), String(e)).toBe(true);
      expect((e as Error).message).toMatch(pattern);
    }
  });

  it("a truncated JPEG is one line naming each libvips reason once, not libvips's repeated lines", async () => {
    const jpeg = await sharp(Buffer.from(Uint8Array.from(rgb)), { raw: { width: W, height: H, channels: 3 } }).jpeg().toBuffer();
    const e = await decodeImageBytes(jpeg.subarray(0, jpeg.length >> 1), 3, 'DecodeJpeg').catch((err: unknown) => err);
    expect((e as Error).message).toMatch(/^DecodeJpeg: cannot decode the JPEG image \(\d+ bytes\): [^\n]+$/);
    const reasons = (e as Error).message.split(': ').slice(2).join(': ').split('; ');
    expect(reasons.length).toBeGreaterThan(0);
    expect(new Set(reasons).size).toBe(reasons.length);
  });
});
