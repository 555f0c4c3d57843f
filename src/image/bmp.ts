/**
 * A small decoder for uncompressed Windows BMP files, which libvips (and so sharp) does not read.
 * Covers what cameras and converters write: 24- and 32-bit BI_RGB/BI_BITFIELDS and 8-bit
 * palettes, bottom-up or top-down rows padded to 4 bytes. (bmp-ts 1.0.9 was tried and returns
 * palette images in the wrong channel order, so this small decoder stays.)
 */
import { LensError } from '../core/errors.js';

/** Decoded BMP as packed RGB bytes (row-major, top row first). */
export interface RawRgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/** True when the bytes start with the BMP signature "BM". */
export function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d;
}

function maskShift(mask: number): { shift: number; max: number } {
  if (mask === 0) return { shift: 0, max: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  return { shift, max: mask >>> shift };
}

/**
 * Decodes a BMP to RGB bytes.
 *
 * @example
 * const { data, width, height } = decodeBmp(readFileSync('cat.bmp'));
 */
export function decodeBmp(bytes: Uint8Array, source = '<bytes>'): RawRgb {
  const fail = (why: string): never => {
    throw new LensError('IMAGE_DECODE', `cannot decode BMP ${source}: ${why}`);
  };
  if (!isBmp(bytes) || bytes.length < 54) fail('not a BMP file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pixelOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  if (headerSize < 40) fail(`OS/2 BMP headers (${headerSize} bytes) are not supported`);
  const width = view.getInt32(18, true);
  const rawHeight = view.getInt32(22, true);
  const bpp = view.getUint16(28, true);
  const compression = view.getUint32(30, true);
  const height = Math.abs(rawHeight);
  const topDown = rawHeight < 0;
  if (width <= 0 || height === 0 || width > 1 << 15 || height > 1 << 15) fail(`bad size ${width}x${rawHeight}`);
  if (![8, 24, 32].includes(bpp)) fail(`${bpp}-bit pixels are not supported (8, 24 and 32 are)`);
  const bitfields = compression === 3 || compression === 6;
  if (compression !== 0 && !(bitfields && bpp === 32)) fail(`compression ${compression} is not supported (only uncompressed)`);
  let masks = [0x00ff0000, 0x0000ff00, 0x000000ff];
  if (bitfields) {
    // Masks follow a 40-byte header, or sit inside V4/V5 headers at the same offset.
    masks = [view.getUint32(54, true), view.getUint32(58, true), view.getUint32(62, true)];
  }
  const stride = Math.ceil((width * bpp) / 32) * 4;
  const needed = stride * height;
  if (pixelOffset + needed > bytes.length) fail(`truncated: pixel data needs ${pixelOffset + needed} bytes, file has ${bytes.length}`);
  // The size fields must agree with the pixel data the file holds: a damaged height (0xFFFFFFFF
  // reads as a 1-row top-down image) would otherwise decode a sliver of the picture and succeed.
  const sizeImage = view.getUint32(34, true);
  const profileEnd = headerSize >= 124 && view.getUint32(14 + 116, true) > 0 ? 14 + view.getUint32(14 + 112, true) + view.getUint32(14 + 116, true) : 0;
  const held = sizeImage > 0 ? sizeImage : (profileEnd > pixelOffset ? Math.min(bytes.length, profileEnd) : bytes.length) - pixelOffset;
  // Writers may pad the pixel array to a multiple of 4 bytes; more than that is another image size.
  if (held > needed + 4 || held < needed) {
    fail(`impossible size ${width}x${rawHeight} (height field 0x${(rawHeight >>> 0).toString(16)}): that needs ${needed} bytes of pixels but the file holds ${held}`);
  }
  let palette: Uint8Array | undefined;
  if (bpp === 8) {
    const colors = view.getUint32(46, true) || 256;
    const start = 14 + headerSize;
    if (start + colors * 4 > pixelOffset) fail('palette overlaps the pixel data');
    palette = bytes.subarray(start, start + colors * 4);
  }
  const shifts = masks.map(maskShift);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = pixelOffset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (bpp === 24) {
        out[o] = bytes[row + x * 3 + 2]!;
        out[o + 1] = bytes[row + x * 3 + 1]!;
        out[o + 2] = bytes[row + x * 3]!;
      } else if (bpp === 32) {
        const v = view.getUint32(row + x * 4, true);
        for (let c = 0; c < 3; c++) {
          const { shift, max } = shifts[c]!;
          out[o + c] = max ? Math.round((((v & masks[c]!) >>> shift) * 255) / max) : 0;
        }
      } else {
        const i = bytes[row + x]! * 4;
        out[o] = palette![i + 2] ?? 0;
        out[o + 1] = palette![i + 1] ?? 0;
        out[o + 2] = palette![i] ?? 0;
      }
    }
  }
  return { data: out, width, height };
}
