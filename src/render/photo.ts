/**
 * An attribution drawn on the user's photo at the photo's own size, with its legend (what is
 * explained, the colour bar with its clipping, smoothing and other notes) in a box inset in the
 * quietest corner. Photos whose longer side is under SMALL_PHOTO_SIDE (a 64x64 shapes image, a
 * 32x32 CIFAR photo) are drawn enlarged by a whole factor, each pixel a square block, so the map
 * can be seen; the legend says so. Pictures still smaller than INSET_MIN get the legend in a band
 * under the picture instead, at least 240 pixels wide (the picture centred above it).
 *
 * @example
 * const viz = visualize(onPhoto, { method: 'overlay', image: photo });
 * const png = await renderOnPhoto(viz, { title: ['integrated_gradients', 'macaw 0.984'], notes: ['smoothed σ = 1.5 model px'] });
 */
import { canvasToPng, drawColorbar, drawRgba, newCanvas, wrapLines } from './draw.js';
import { fontSpec } from './fonts.js';
import type { RgbaImage } from './rgba.js';
import type { Visualization } from './visualize.js';

export interface PhotoLegend {
  /** Bold first line, then ordinary lines (class and probability, baseline...); long lines wrap. */
  title: readonly string[];
  /** Small lines under the colour bar (clipping, smoothing, padding...); long lines wrap. */
  notes?: readonly string[];
  /** Where the inset goes. Default `bottom-left`. */
  corner?: Corner;
}

export const CORNERS = ['top-left', 'top-right', 'bottom-left', 'bottom-right'] as const;
export type Corner = (typeof CORNERS)[number];

/** Smallest photo (width x height) that holds the legend inset; smaller photos get a band under them. */
export const INSET_MIN = { width: 320, height: 240 } as const;

/** Narrowest legend band under a small photo, in pixels. */
const BAND_MIN_WIDTH = 240;

/** Photos whose longer side is shorter are drawn enlarged by the whole factor that brings it to at least this many pixels. */
export const SMALL_PHOTO_SIDE = 256;

/**
 * The whole factor a photo is enlarged by in `renderOnPhoto` (1 for photos of SMALL_PHOTO_SIDE or more).
 *
 * @example
 * photoEnlargement(64, 64); // 4: a 64x64 image is drawn at 256x256
 */
export function photoEnlargement(width: number, height: number): number {
  const side = Math.max(width, height);
  return side > 0 && side < SMALL_PHOTO_SIDE ? Math.ceil(SMALL_PHOTO_SIDE / side) : 1;
}

/**
 * The corner whose quarter of the picture holds the least attribution (per-pixel weights, H*W),
 * where an inset legend hides the least.
 *
 * @example
 * const corner = quietestCorner(Float32Array.from(map, Math.abs), width, height);
 */
export function quietestCorner(weights: ArrayLike<number>, width: number, height: number): Corner {
  const mass = [0, 0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) mass[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)]! += Math.abs(weights[y * width + x]!);
  }
  // Ties prefer the bottom-left, the usual place for a legend.
  const order = [2, 3, 0, 1];
  let best = order[0]!;
  for (const k of order) if (mass[k]! < mass[best]!) best = k;
  return CORNERS[best]!;
}

/**
 * Draws the picture with its legend and returns PNG bytes. With an inset legend (photos of at
 * least INSET_MIN) the PNG has exactly the picture's size, times photoEnlargement for small photos.
 */
export async function renderOnPhoto(picture: RgbaImage | Visualization, legend: PhotoLegend): Promise<Buffer> {
  const colorbar = (picture as Visualization).colorbar;
  const enlarged = photoEnlargement(picture.width, picture.height);
  const shown = { width: picture.width * enlarged, height: picture.height * enlarged };
  const inset = shown.width >= INSET_MIN.width && shown.height >= INSET_MIN.height;
  const fontSize = inset ? Math.max(10, Math.min(15, Math.round(Math.min(shown.width, 1.4 * shown.height) / 42))) : 11;
  const lineHeight = Math.ceil(fontSize * 1.3);
  const pad = Math.round(fontSize / 2);
  // Under a small picture the band is at least BAND_MIN_WIDTH wide, the picture centred above it.
  const canvasWidth = inset ? shown.width : Math.max(shown.width, BAND_MIN_WIDTH);
  const boxWidth = inset ? Math.min(shown.width - 2 * pad, Math.max(230, Math.round(shown.width * 0.42))) : canvasWidth;
  const inner = boxWidth - 2 * pad;
  const barHeight = Math.round(fontSize * 0.8);
  const [first = '', ...rest] = legend.title;
  const titleLines = [...wrapLines([first], inner, fontSpec(fontSize, 'bold')).map((l) => ({ text: l, bold: true })), ...wrapLines(rest, inner, fontSpec(fontSize)).map((l) => ({ text: l, bold: false }))];
  const notes = [...(legend.notes ?? []), ...(enlarged > 1 ? [`shown ${enlarged}x enlarged (photo ${picture.width}x${picture.height} px)`] : [])];
  const noteLines = wrapLines(notes, inner, fontSpec(fontSize - 1));
  const barUsed = colorbar ? 2 + barHeight + 3 + lineHeight + (colorbar.label ? lineHeight : 0) + 2 : 0;
  const boxHeight = 2 * pad + (titleLines.length + noteLines.length) * lineHeight + barUsed;
  const height = inset ? shown.height : shown.height + boxHeight;
  const { canvas, ctx } = newCanvas(canvasWidth, height, '#ffffff');
  // drawRgba enlarges without smoothing: each photo pixel stays one square block.
  drawRgba(ctx, picture, Math.floor((canvasWidth - shown.width) / 2), 0, shown.width, shown.height);
  const corner = legend.corner ?? 'bottom-left';
  const x0 = !inset ? 0 : corner.endsWith('left') ? pad : shown.width - boxWidth - pad;
  const y0 = !inset ? shown.height : corner.startsWith('top') ? pad : shown.height - boxHeight - pad;
  if (inset) {
    ctx.save();
    ctx.fillStyle = 'rgba(255, 255, 255, 0.88)';
    ctx.fillRect(x0, y0, boxWidth, boxHeight);
    ctx.restore();
  }
  let y = y0 + pad;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  ctx.fillStyle = '#111111';
  for (const line of titleLines) {
    ctx.font = fontSpec(fontSize, line.bold ? 'bold' : 'normal');
    ctx.fillText(line.text, x0 + pad, y);
    y += lineHeight;
  }
  if (colorbar) {
    y += 2;
    y += drawColorbar(ctx, colorbar, { x: x0 + pad, y, width: inner, barHeight }, fontSize - 1, lineHeight) + 2;
  }
  ctx.font = fontSpec(fontSize - 1);
  ctx.textAlign = 'left';
  ctx.fillStyle = '#333333';
  for (const note of noteLines) {
    ctx.fillText(note, x0 + pad, y);
    y += lineHeight;
  }
  return canvasToPng(canvas);
}
