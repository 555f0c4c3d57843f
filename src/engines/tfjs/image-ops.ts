/**
 * TensorFlow's image decoding ops as TensorFlow.js kernels, so that converted SavedModels whose
 * signatures take encoded images (the exporter's `image_bytes` signatures, the TF Serving ResNet
 * tutorial model) run locally: DecodeJpeg, DecodePng, DecodeBmp, DecodeGif and DecodeImage.
 *
 * Like TensorFlow 2.x, every one of them decodes by content (a PNG or a still GIF sent to
 * DecodeJpeg decodes, so PNG is a lossless way to send pixels to a JPEG signature; a BMP only
 * through DecodeBmp and DecodeImage), ignores EXIF orientation, and turns unreadable bytes into an error naming the op. Decoding is
 * done by sharp (libjpeg-turbo, libspng, libnsgif) off the main thread; BMPs, which libvips does
 * not read, by the project's BMP decoder. uint8 images become int32 tfjs tensors (tfjs has no
 * uint8); a following Cast to float gives the same values TensorFlow computes.
 *
 * @example
 * registerImageOps();
 * const model = await loadSavedModel('export/1');   // its DecodeJpeg nodes now run
 */
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import type { GraphNode } from '@tensorflow/tfjs-converter';
import { registerGraphOp } from '../../convert/graph/ops.js';
import { LensError, errorMessage } from '../../core/errors.js';
import { decodeBmp } from '../../image/bmp.js';
import { decoderReason } from '../../image/decoder-reason.js';
import { sniffImageFormat } from '../../image/format.js';

/** Ops registered by {@link registerImageOps}. */
export { IMAGE_OPS } from './image-op-names.js';

/** Decoded frames: pixel bytes [frames, height, width, channels]. */
export interface DecodedImage {
  data: Uint8Array;
  frames: number;
  height: number;
  width: number;
  channels: number;
}

/** Repacks interleaved pixels from `from` to `to` channels (gray <-> RGB(A), alpha added opaque or dropped). */
function convertChannels(data: Uint8Array, pixels: number, from: number, to: number): Uint8Array {
  if (from === to) return data;
  const out = new Uint8Array(pixels * to);
  for (let p = 0; p < pixels; p++) {
    const src = p * from;
    const dst = p * to;
    const gray = from <= 2;
    const r = data[src]!;
    const g = gray ? r : data[src + 1]!;
    const b = gray ? r : data[src + 2]!;
    const alpha = from === 2 ? data[src + 1]! : from === 4 ? data[src + 3]! : 255;
    if (to === 1) out[dst] = gray ? r : Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else if (to === 2) {
      out[dst] = gray ? r : Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      out[dst + 1] = alpha;
    } else {
      out[dst] = r;
      out[dst + 1] = g;
      out[dst + 2] = b;
      if (to === 4) out[dst + 3] = alpha;
    }
  }
  return out;
}

/**
 * Decodes image bytes as TensorFlow's decode ops do: `channels` 0 keeps the file's channels,
 * 1/3/4 convert. `allFrames` keeps every GIF frame (DecodeGif, DecodeImage with animations).
 *
 * @example
 * const img = await decodeImageBytes(jpegBytes, 3, 'DecodeJpeg');
 * img.height; img.width; img.data.length; // h * w * 3
 */
export async function decodeImageBytes(bytes: Uint8Array, channels: number, op: string, allFrames = false): Promise<DecodedImage> {
  if (![0, 1, 3, 4].includes(channels)) throw new LensError('INVALID_ARGUMENT', `${op}: channels must be 0, 1, 3 or 4, got ${channels}`);
  const format = sniffImageFormat(bytes);
  if (!format) {
    throw new LensError('IMAGE_DECODE', `${op}: unknown image file format (${bytes.length} bytes); one of JPEG, PNG, GIF, BMP required`);
  }
  if (format === 'bmp' && op !== 'DecodeBmp' && op !== 'DecodeImage') {
    // TensorFlow decodes PNG and GIF through DecodeJpeg, but not BMP.
    throw new LensError('INVALID_ARGUMENT', `Trying to decode BMP format using a wrong op. Use \`decode_bmp\` or \`decode_image\` instead. Op used: ${op}`);
  }
  try {
    if (format === 'bmp') {
      const rgb = decodeBmp(bytes, `${op} input`);
      const to = channels === 0 ? 3 : channels;
      return { data: convertChannels(rgb.data, rgb.width * rgb.height, 3, to), frames: 1, height: rgb.height, width: rgb.width, channels: to };
    }
    const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const meta = await sharp(input, { failOn: 'error', pages: format === 'gif' ? -1 : 1 }).metadata();
    const pages = format === 'gif' ? (meta.pages ?? 1) : 1;
    if (pages > 1 && !allFrames && (op === 'DecodeJpeg' || op === 'DecodePng')) {
      throw new LensError('INVALID_ARGUMENT', `${op}: got ${pages} frames, but animated GIFs can only be decoded by DecodeGif or DecodeImage`);
    }
    const frames = allFrames ? pages : 1;
    const { data, info } = await sharp(input, { failOn: 'error', pages: frames === 1 ? 1 : -1 })
      .raw()
      .toBuffer({ resolveWithObject: true });
    // sharp hands out sRGB (grey expanded, alpha kept); "native" is what the file holds, as
    // TensorFlow counts it: GIFs are RGB, JPEGs grey or RGB (CMYK converted), PNGs 1-4 channels.
    const native = format === 'gif' ? 3 : format === 'jpeg' ? Math.min(meta.channels ?? 3, 3) : (meta.channels ?? info.channels);
    const to = channels === 0 ? native : channels;
    const height = info.height / frames;
    const pixels = info.width * info.height;
    return { data: convertChannels(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pixels, info.channels, to), frames, height, width: info.width, channels: to };
  } catch (e) {
    if (e instanceof LensError) throw e;
    throw new LensError('IMAGE_DECODE', `${op}: cannot decode the ${format.toUpperCase()} image (${bytes.length} bytes): ${decoderReason(e)}`, { cause: e });
  }
}

function contentsOf(node: GraphNode, op: string): Promise<Uint8Array> {
  const t = node.inputs[0];
  if (!t || t.dtype !== 'string' || t.rank !== 0) {
    throw new LensError('INVALID_ARGUMENT', `${op}: contents must be a scalar string, got ${t ? `${t.dtype} [${t.shape.join(',')}]` : 'nothing'}`);
  }
  // bytes(), not data(): data() decodes string tensors as UTF-8 text, which mangles binary images.
  return (t.bytes() as Promise<Uint8Array[]>).then((v) => v[0]!);
}

/**
 * The decoded pixels as the op's output: float32 scaled to 0..1 (DecodeImage dtype=float32, as
 * TensorFlow's convert_image_dtype), else the 8-bit values as int32. (tfjs reports DT_UINT16 as
 * no dtype at all, so 16-bit PNG output is not told apart; images decode to 8 bits.)
 */
function outputTensor(img: DecodedImage, dtype: string, rank4: boolean): tf.Tensor {
  const shape = rank4 ? [img.frames, img.height, img.width, img.channels] : [img.height, img.width, img.channels];
  if (dtype === 'float32') return tf.tensor(Float32Array.from(img.data, (v) => v / 255), shape, 'float32');
  return tf.tensor(Int32Array.from(img.data), shape, 'int32');
}

function attrNumber(node: GraphNode, name: string, fallback: number): number {
  const v = node.attrs[name];
  return typeof v === 'number' ? v : fallback;
}

function attrDtype(node: GraphNode): string {
  const v = node.attrs['dtype'];
  return typeof v === 'string' ? v : 'uint8';
}

async function decodeJpegOrPng(node: GraphNode, op: 'DecodeJpeg' | 'DecodePng' | 'DecodeBmp'): Promise<tf.Tensor> {
  const img = await decodeImageBytes(await contentsOf(node, op), attrNumber(node, 'channels', 0), op);
  return outputTensor(img, op === 'DecodePng' ? attrDtype(node) : 'uint8', false);
}

let registered = false;

/**
 * Registers the image decoding kernels with tfjs-converter (through registerGraphOp). Safe to call
 * more than once.
 *
 * @example
 * registerImageOps();
 * supportsOp('DecodeJpeg'); // true
 */
export function registerImageOps(): void {
  if (registered) return;
  registered = true;
  registerGraphOp('DecodeJpeg', (node) => decodeJpegOrPng(node, 'DecodeJpeg'));
  registerGraphOp('DecodePng', (node) => decodeJpegOrPng(node, 'DecodePng'));
  registerGraphOp('DecodeBmp', (node) => decodeJpegOrPng(node, 'DecodeBmp'));
  registerGraphOp('DecodeGif', async (node) => outputTensor(await decodeImageBytes(await contentsOf(node, 'DecodeGif'), 3, 'DecodeGif', true), 'uint8', true));
  registerGraphOp('DecodeImage', async (node) => {
    const expand = node.attrs['expand_animations'] !== false;
    const bytes = await contentsOf(node, 'DecodeImage');
    const gif = sniffImageFormat(bytes) === 'gif';
    const img = await decodeImageBytes(bytes, attrNumber(node, 'channels', 0), 'DecodeImage', gif && expand);
    return outputTensor(img, attrDtype(node), gif && expand);
  });
}
