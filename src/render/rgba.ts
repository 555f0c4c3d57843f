/**
 * 8-bit RGBA images, the output of every visualization: the layout of a canvas `ImageData`, so
 * they draw onto a canvas as they are and encode to PNG with sharp.
 *
 * @example
 * const rgba = rgbaFromImage(pixels);        // Pixels (0..255 HWC) -> RgbaImage
 * const png = await encodeRgbaPng(rgba);
 */
import sharp from 'sharp';
import { LensError } from '../core/errors.js';

/** Row-major RGBA, 4 bytes per pixel, non-premultiplied alpha. */
export interface RgbaImage {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

/** An image in 0..255, row-major HWC with 1, 3 or 4 channels (`Pixels` from src/image fits). */
export interface ImageLike {
  data: ArrayLike<number>;
  height: number;
  width: number;
  channels: number;
}

/** Throws unless `image` is a consistent HWC image with 1, 3 or 4 channels. */
export function checkImage(image: ImageLike, what = 'image'): void {
  const { height, width, channels, data } = image;
  if (![1, 3, 4].includes(channels) || !(height > 0 && width > 0) || data.length !== height * width * channels) {
    throw new LensError(
      'SHAPE_MISMATCH',
      `${what} has ${data.length} values for shape [${height}, ${width}, ${channels}] (HWC with 1, 3 or 4 channels expected)`,
    );
  }
}

/** Throws unless `image` is an RGBA image of consistent size. */
export function checkRgba(image: RgbaImage, what = 'image'): void {
  if (!(image.width > 0 && image.height > 0) || image.data.length !== image.width * image.height * 4) {
    throw new LensError('SHAPE_MISMATCH', `${what} has ${image.data.length} bytes for ${image.width}x${image.height} RGBA`);
  }
}

/** A new RGBA image, all transparent black. */
export function createRgba(width: number, height: number): RgbaImage {
  return { data: new Uint8ClampedArray(width * height * 4), width, height };
}

/**
 * The RGB value of channel `c` (0..2) at pixel `p` of an image, unrounded: grey images repeat
 * their one channel, and a fourth channel (alpha) is ignored.
 */
export function channelValue(image: ImageLike, p: number, c: number): number {
  return image.channels === 1 ? image.data[p]! : image.data[p * image.channels + c]!;
}

/** The image as opaque RGBA, values rounded and clamped to 0..255. */
export function rgbaFromImage(image: ImageLike): RgbaImage {
  checkImage(image);
  const out = createRgba(image.width, image.height);
  const n = image.width * image.height;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) out.data[p * 4 + c] = Math.round(channelValue(image, p, c));
    out.data[p * 4 + 3] = 255;
  }
  return out;
}

/** Encodes an RGBA image as PNG (8-bit RGBA). */
export async function encodeRgbaPng(image: RgbaImage): Promise<Buffer> {
  checkRgba(image);
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 4 },
  })
    .png()
    .toBuffer();
}
