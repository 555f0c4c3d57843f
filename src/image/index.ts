/**
 * Images in and out, with sharp: read from a path, an http(s) URL or bytes; decode; bring to the
 * model's size by resize-and-pad (keep aspect, pad black, as the TF Serving ResNet tutorial does),
 * centre crop, or squash; encode JPEG/PNG.
 *
 * @example
 * const img = await loadPixels('cat.jpg', { size: [224, 224], resize: 'pad' });
 * const batch = pixelsToTensor([img]);          // [1,224,224,3] float32 in 0..255
 */
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { LensError, errorMessage } from '../core/errors.js';
import { decodeBmp, isBmp } from './bmp.js';
import { fitGeometry, type ImageGeometry, type ResizeMode } from './geometry.js';
import { decoderReason } from './decoder-reason.js';
import { isUrl } from './url.js';

export {
  RESIZE_MODES,
  contentMask,
  fitGeometry,
  hasPadding,
  mapToPhoto,
  parseResizeMode,
  type HwcMap,
  type ImageGeometry,
  type Rect,
  type ResizeMode,
} from './geometry.js';

/** Decoded pixels, row-major HWC, 0..255 as float32. */
export interface Pixels {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
  /** Where the pixels came from (path, URL or `<bytes>`), for reports. */
  source: string;
  /** How the photo was brought to `size` (absent when it was not resized). */
  geometry?: ImageGeometry;
}

export interface FetchOptions {
  /** Milliseconds before a URL fetch is abandoned. Default 15000. */
  timeoutMs?: number;
  /** Largest accepted file or download in bytes. Default 50 MiB. */
  maxBytes?: number;
}

export interface LoadOptions extends FetchOptions {
  /** [height, width] to reach; omitted keeps the image size. */
  size?: readonly [number, number];
  resize?: ResizeMode;
  /** 3 for RGB (default), 1 for greyscale. */
  channels?: 1 | 3;
}

const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;

export { isUrl };

/** Reads the encoded bytes of an image from a path or an http(s) URL, with a size limit and a timeout. */
export async function readImageBytes(source: string, options: FetchOptions = {}): Promise<Buffer> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!isUrl(source)) {
    let bytes: Buffer;
    try {
      bytes = await readFile(source);
    } catch (e) {
      throw new LensError('NOT_FOUND', `cannot read image ${source}: ${errorMessage(e)}`);
    }
    if (bytes.length > maxBytes) throw new LensError('IMAGE_TOO_LARGE', `image ${source} is ${bytes.length} bytes, over the ${maxBytes}-byte limit`);
    return bytes;
  }
  const timeoutMs = options.timeoutMs ?? 15_000;
  let response: Response;
  try {
    response = await fetch(source, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (e) {
    const reason = e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : errorMessage(e);
    throw new LensError('IMAGE_FETCH', `cannot fetch image ${source}: ${reason}`);
  }
  if (!response.ok) throw new LensError('IMAGE_FETCH', `cannot fetch image ${source}: HTTP ${response.status} ${response.statusText}`);
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new LensError('IMAGE_TOO_LARGE', `image ${source} is ${declared} bytes, over the ${maxBytes}-byte limit`);
  // Stream with a running count so that a lying or absent Content-Length cannot exhaust memory.
  const chunks: Buffer[] = [];
  let total = 0;
  if (response.body) {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > maxBytes) throw new LensError('IMAGE_TOO_LARGE', `image ${source} is over the ${maxBytes}-byte limit`);
      chunks.push(Buffer.from(chunk));
    }
  }
  return Buffer.concat(chunks);
}

/** Decodes and resizes encoded image bytes to pixels. */
export async function decodePixels(bytes: Buffer | Uint8Array, options: LoadOptions & { source?: string } = {}): Promise<Pixels> {
  const source = options.source ?? '<bytes>';
  const channels = options.channels ?? 3;
  // libvips has no BMP loader: decode those here and hand sharp the raw pixels.
  const bmp = isBmp(bytes) ? decodeBmp(bytes, source) : undefined;
  try {
    let img = (bmp ? sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: 3 } }) : sharp(bytes, { failOn: 'error' }).rotate())
      .flatten({ background: { r: 0, g: 0, b: 0 } });
    img = channels === 1 ? img.greyscale() : img.toColourspace('srgb');
    let fitted: { mode: ResizeMode; target: { height: number; width: number }; source: { height: number; width: number } } | undefined;
    if (options.size) {
      const [height, width] = options.size;
      const mode: ResizeMode = options.resize ?? 'pad';
      const source = bmp ? { width: bmp.width, height: bmp.height } : await orientedSize(bytes);
      // pad and crop resize with the aspect kept, and the result is placed here, so that where the photo lies is known exactly.
      const fit = { pad: 'inside', crop: 'outside', squash: 'fill' } as const;
      img = img.resize({ width, height, fit: fit[mode] });
      fitted = { mode, target: { height, width }, source };
    }
    const { data: decoded, info } = await img.removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const got = info.channels;
    let data: Uint8Array = decoded;
    let size = { height: info.height, width: info.width };
    let geometry: ImageGeometry | undefined;
    if (fitted) {
      geometry = fitGeometry(fitted.mode, fitted.source, fitted.target, size);
      data = placeResized(decoded, size, got, geometry, fitted.mode);
      size = fitted.target;
    }
    const out = new Float32Array(size.width * size.height * channels);
    // sharp may keep 3 channels for greyscale input converted to sRGB; take what is asked for.
    for (let i = 0, j = 0; i < out.length; i += channels, j += got) {
      for (let c = 0; c < channels; c++) out[i + c] = data[j + Math.min(c, got - 1)]!;
    }
    return { data: out, height: size.height, width: size.width, channels, source, ...(geometry ? { geometry } : {}) };
  } catch (e) {
    if (e instanceof LensError) throw e;
    throw new LensError('IMAGE_DECODE', `cannot decode image ${source}: ${decoderReason(e)}`);
  }
}

/** Width and height of an encoded image as displayed (EXIF orientations 5..8 swap them). */
async function orientedSize(bytes: Buffer | Uint8Array): Promise<{ height: number; width: number }> {
  const meta = await sharp(bytes).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  return swap ? { height: meta.width!, width: meta.height! } : { height: meta.height!, width: meta.width! };
}

/**
 * The resized photo placed in the model input: centred with black padding (`pad`), or its centre
 * cut out (`crop`); `squash` is already the right size.
 */
function placeResized(raw: Uint8Array, size: { height: number; width: number }, channels: number, geometry: ImageGeometry, mode: ResizeMode): Uint8Array {
  if (mode === 'squash') return raw;
  const { input, content } = geometry;
  const out = new Uint8Array(input.height * input.width * channels);
  if (mode === 'pad') {
    for (let y = 0; y < size.height; y++) {
      out.set(raw.subarray(y * size.width * channels, (y + 1) * size.width * channels), ((content.top + y) * input.width + content.left) * channels);
    }
    return out;
  }
  // The crop window's corner, in resized pixels (what `geometry.visible` holds in photo pixels).
  const top = Math.round((size.height - input.height) / 2);
  const left = Math.round((size.width - input.width) / 2);
  for (let y = 0; y < input.height; y++) {
    const from = ((top + y) * size.width + left) * channels;
    out.set(raw.subarray(from, from + input.width * channels), y * input.width * channels);
  }
  return out;
}

/** Reads, decodes and resizes an image from a path or URL. */
export async function loadPixels(source: string, options: LoadOptions = {}): Promise<Pixels> {
  const bytes = await readImageBytes(source, options);
  return decodePixels(bytes, { ...options, source });
}

/** Stacks same-sized pixel images into a [N,H,W,C] float32 tensor. */
export function pixelsToTensor(images: readonly Pixels[]): tf.Tensor4D {
  const first = images[0];
  if (!first) throw new LensError('INVALID_ARGUMENT', 'no images to stack');
  const { height, width, channels } = first;
  const per = height * width * channels;
  const data = new Float32Array(per * images.length);
  images.forEach((img, i) => {
    if (img.height !== height || img.width !== width || img.channels !== channels) {
      throw new LensError('SHAPE_MISMATCH', `image ${img.source} is ${img.height}x${img.width}x${img.channels}, expected ${height}x${width}x${channels}`);
    }
    data.set(img.data, i * per);
  });
  return tf.tensor4d(data, [images.length, height, width, channels]);
}

/** Raw 8-bit pixels (HWC) from float pixels, clamped and rounded. */
export function toUint8(pixels: Pick<Pixels, 'data'>): Uint8Array {
  const out = new Uint8Array(pixels.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(pixels.data[i]!)));
  return out;
}

/** Encodes pixels as JPEG (quality 0..100, default 95). */
export async function encodeJpeg(pixels: Omit<Pixels, 'source'>, quality = 95): Promise<Buffer> {
  return sharp(toUint8(pixels), { raw: { width: pixels.width, height: pixels.height, channels: pixels.channels as 1 | 3 } })
    .jpeg({ quality })
    .toBuffer();
}

/** Encodes pixels as PNG. */
export async function encodePng(pixels: Omit<Pixels, 'source'>): Promise<Buffer> {
  return sharp(toUint8(pixels), { raw: { width: pixels.width, height: pixels.height, channels: pixels.channels as 1 | 3 | 4 } })
    .png()
    .toBuffer();
}
