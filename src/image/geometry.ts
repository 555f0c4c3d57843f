/**
 * Where a photo lies in the model input after `--resize pad|crop|squash`, and back: the geometry
 * every attribution keeps so that a map computed at the model's size can be drawn on the user's
 * photo, and so that padding (which is not image) can be told apart from the photo.
 *
 * Coordinates are in pixels with the origin at the top-left corner of the top-left pixel: pixel
 * (y, x) covers [y, y+1) x [x, x+1).
 *
 * @example
 * const img = await loadPixels('parrot.jpg', { size: [224, 224], resize: 'pad' });
 * img.geometry;   // { resize: 'pad', original: { height: 929, width: 512 }, content: { top: 0, left: 50, height: 224, width: 123 }, ... }
 * const onPhoto = mapToPhoto(attr, img.geometry!);   // attribution at 929x512
 */
import { LensError } from '../core/errors.js';

export const RESIZE_MODES = ['pad', 'crop', 'squash'] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];

/** An axis-aligned rectangle in pixels (may be fractional for `visible`). */
export interface Rect {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** How a photo became the model input. */
export interface ImageGeometry {
  resize: ResizeMode;
  /** The photo as decoded (after EXIF rotation). */
  original: { height: number; width: number };
  /** The model input. */
  input: { height: number; width: number };
  /** The part of the model input that shows the photo; outside it (resize `pad`) is padding. Whole pixels. */
  content: Rect;
  /** The part of the photo the content shows (resize `crop` cuts the rest away), in photo pixels. */
  visible: Rect;
}

/**
 * The geometry of fitting a `source` photo into a `target` input: `pad` keeps the aspect and
 * centres the resized photo (`resized`, its size after resizing) with padding around it, `crop`
 * keeps the aspect and cuts the centre of the resized photo, `squash` stretches.
 *
 * @example
 * fitGeometry('pad', { height: 929, width: 512 }, { height: 224, width: 224 }, { height: 224, width: 123 }).content;
 * // { top: 0, left: 50, height: 224, width: 123 }
 */
export function fitGeometry(
  resize: ResizeMode,
  source: { height: number; width: number },
  target: { height: number; width: number },
  resized: { height: number; width: number },
): ImageGeometry {
  const whole = (s: { height: number; width: number }): Rect => ({ top: 0, left: 0, height: s.height, width: s.width });
  const base = { resize, original: { ...source }, input: { ...target } };
  if (resize === 'squash') return { ...base, content: whole(target), visible: whole(source) };
  if (resize === 'pad') {
    const top = Math.floor((target.height - resized.height) / 2);
    const left = Math.floor((target.width - resized.width) / 2);
    return { ...base, content: { top, left, height: resized.height, width: resized.width }, visible: whole(source) };
  }
  // crop: the target window, centred in the resized photo, seen in photo pixels.
  const top = Math.round((resized.height - target.height) / 2);
  const left = Math.round((resized.width - target.width) / 2);
  const sy = source.height / resized.height;
  const sx = source.width / resized.width;
  return { ...base, content: whole(target), visible: { top: top * sy, left: left * sx, height: target.height * sy, width: target.width * sx } };
}

/** True when the model input has pixels that are not photo (resize `pad` with a different aspect). */
export function hasPadding(geometry: ImageGeometry): boolean {
  const { content, input } = geometry;
  return content.top > 0 || content.left > 0 || content.height < input.height || content.width < input.width;
}

/**
 * 1 where the model input shows the photo, 0 on padding (H*W of the input).
 *
 * @example
 * const inside = contentMask(img.geometry);   // Uint8Array 224*224
 */
export function contentMask(geometry: ImageGeometry): Uint8Array {
  const { input, content } = geometry;
  const mask = new Uint8Array(input.height * input.width);
  for (let y = content.top; y < content.top + content.height; y++) mask.fill(1, y * input.width + content.left, y * input.width + content.left + content.width);
  return mask;
}

/** An HWC float map (attribution or image). */
export interface HwcMap {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

/**
 * Brings a map computed on the model input back onto the photo at its own size: bilinear
 * resampling of the content rectangle onto the visible part of the photo. With `preserveSum`
 * (for attributions) values are scaled by the ratio of pixel areas so that the map's sum over the
 * photo stays the sum over the content; photo pixels the model never saw (cut away by `crop`) are
 * 0 and reported in `seen`.
 *
 * @example
 * const { map, seen } = mapToPhoto(attr, img.geometry!, { preserveSum: true });
 */
export function mapToPhoto(map: HwcMap, geometry: ImageGeometry, options: { preserveSum?: boolean } = {}): { map: HwcMap; seen: Uint8Array } {
  const { input, content, visible, original } = geometry;
  if (map.height !== input.height || map.width !== input.width) {
    throw new LensError('SHAPE_MISMATCH', `map is ${map.height}x${map.width}, the geometry's model input ${input.height}x${input.width}`);
  }
  const { height: H, width: W } = original;
  const c = map.channels;
  const out = new Float32Array(H * W * c);
  const seen = new Uint8Array(H * W);
  const sy = content.height / visible.height;
  const sx = content.width / visible.width;
  const areaScale = options.preserveSum ? sy * sx : 1;
  const yLo = Math.max(0, Math.floor(visible.top));
  const yHi = Math.min(H, Math.ceil(visible.top + visible.height));
  const xLo = Math.max(0, Math.floor(visible.left));
  const xHi = Math.min(W, Math.ceil(visible.left + visible.width));
  const clampY = (v: number) => Math.min(content.top + content.height - 1, Math.max(content.top, v));
  const clampX = (v: number) => Math.min(content.left + content.width - 1, Math.max(content.left, v));
  for (let py = yLo; py < yHi; py++) {
    // Pixel centres map to pixel centres.
    const my = content.top + (py + 0.5 - visible.top) * sy - 0.5;
    const y0 = Math.floor(my);
    const fy = my - y0;
    const ya = clampY(y0);
    const yb = clampY(y0 + 1);
    for (let px = xLo; px < xHi; px++) {
      const mx = content.left + (px + 0.5 - visible.left) * sx - 0.5;
      const x0 = Math.floor(mx);
      const fx = mx - x0;
      const xa = clampX(x0);
      const xb = clampX(x0 + 1);
      const o = (py * W + px) * c;
      seen[py * W + px] = 1;
      for (let ch = 0; ch < c; ch++) {
        const at = (y: number, x: number) => map.data[(y * input.width + x) * c + ch]!;
        const v = (1 - fy) * ((1 - fx) * at(ya, xa) + fx * at(ya, xb)) + fy * ((1 - fx) * at(yb, xa) + fx * at(yb, xb));
        out[o + ch] = v * areaScale;
      }
    }
  }
  return { map: { data: out, height: H, width: W, channels: c }, seen };
}

/** Checks that a value is a resize mode. */
export function parseResizeMode(value: string): ResizeMode {
  if ((RESIZE_MODES as readonly string[]).includes(value)) return value as ResizeMode;
  throw new LensError('INVALID_ARGUMENT', `unknown resize mode "${value}": expected one of ${RESIZE_MODES.join(', ')}`);
}
