/**
 * Canvas helpers shared by grids and charts: a canvas with the drawing font, RGBA images drawn
 * scaled, text cut to a width, number labels, colour bars, and PNG encoding through sharp.
 */
import { createCanvas, SvgExportFlag, type Canvas, type SKRSContext2D, type SvgCanvas } from '@napi-rs/canvas';
import { colormapLut, LUT_SIZE } from './colormap.js';
import { fontSpec } from './fonts.js';
import { formatNumber } from './format.js';
import { encodeRgbaPng, type RgbaImage } from './rgba.js';
import type { ColorbarSpec } from './visualize.js';

/** Output formats of grids and charts: PNG, or SVG (text as paths, pictures embedded as PNG). */
export type PictureFormat = 'png' | 'svg';

/** A canvas filled with `background`, text in the registered font, language fixed for stable pixels. */
export function newCanvas(width: number, height: number, background: string): { canvas: Canvas; ctx: SKRSContext2D };
export function newCanvas(width: number, height: number, background: string, format: PictureFormat): { canvas: Canvas | SvgCanvas; ctx: SKRSContext2D };
export function newCanvas(width: number, height: number, background: string, format: PictureFormat = 'png'): { canvas: Canvas | SvgCanvas; ctx: SKRSContext2D } {
  const canvas = format === 'svg' ? createCanvas(width, height, SvgExportFlag.ConvertTextToPaths) : createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.lang = 'en';
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, width, height);
  ctx.font = fontSpec(12);
  return { canvas, ctx };
}

/** The finished drawing: PNG bytes (through sharp), or the SVG document's bytes. */
export async function finishCanvas(canvas: Canvas | SvgCanvas): Promise<Buffer> {
  return 'getContent' in canvas ? canvas.getContent() : canvasToPng(canvas);
}

/** Encodes the canvas as PNG with sharp. */
export async function canvasToPng(canvas: Canvas): Promise<Buffer> {
  const ctx = canvas.getContext('2d');
  const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return encodeRgbaPng({ data, width, height });
}

/** Draws an RGBA image into a box: nearest-neighbour when enlarging (pixels stay crisp), smoothed when shrinking. */
export function drawRgba(ctx: SKRSContext2D, image: RgbaImage, x: number, y: number, width: number, height: number): void {
  const source = createCanvas(image.width, image.height);
  const sctx = source.getContext('2d');
  const data = sctx.createImageData(image.width, image.height);
  data.data.set(image.data);
  sctx.putImageData(data, 0, 0);
  ctx.save();
  ctx.imageSmoothingEnabled = width < image.width || height < image.height;
  ctx.drawImage(source, x, y, width, height);
  ctx.restore();
}

/** `text`, shortened with an ellipsis to fit `maxWidth` in the current font. */
export function fitText(ctx: SKRSContext2D, text: string, maxWidth: number): string {
  if (ctx.measureText(text).width <= maxWidth) return text;
  const chars = [...text];
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ctx.measureText(`${chars.slice(0, mid).join('')}…`).width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return lo === 0 ? '' : `${chars.slice(0, lo).join('')}…`;
}

/** Lines of text in `font`, each broken to fit `maxWidth` (they wrap, never cut). */
export function wrapLines(lines: readonly string[], maxWidth: number, font: string): string[] {
  const ctx = newCanvas(1, 1, '#ffffff').ctx;
  ctx.font = font;
  return lines.flatMap((l) => wrapText(ctx, l, maxWidth));
}

/**
 * `text` broken into lines (at spaces, else inside words) that fit `maxWidth` in the current
 * font; nothing is cut off.
 *
 * @example
 * wrapText(ctx, 'blur(sigma=5) · 64 steps', 80);   // ['blur(sigma=5)', '· 64 steps']
 */
export function wrapText(ctx: SKRSContext2D, text: string, maxWidth: number): string[] {
  const fits = (s: string) => ctx.measureText(s).width <= maxWidth;
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    const joined = line ? `${line} ${word}` : word;
    if (fits(joined)) {
      line = joined;
      continue;
    }
    if (line) lines.push(line);
    // A word wider than the line is broken where it must be.
    let rest = word;
    while (rest.length > 1 && !fits(rest)) {
      // At least one character per line, however narrow the width.
      let k = rest.length - 1;
      while (k > 1 && !fits(rest.slice(0, k))) k--;
      lines.push(rest.slice(0, k));
      rest = rest.slice(k);
    }
    line = rest;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * A horizontal colour bar: the colormap from left (position 0, value `from`) to right (position 1,
 * value `to`), with labels at both ends and the middle, and the bar's label under them.
 * Returns the height used: `barHeight + 3 + lineHeight` (+ `lineHeight` with a label).
 */
export function drawColorbar(
  ctx: SKRSContext2D,
  spec: ColorbarSpec,
  box: { x: number; y: number; width: number; barHeight: number },
  fontSize: number,
  lineHeight: number,
): number {
  const lut = colormapLut(spec.colormap);
  const strip: RgbaImage = { data: new Uint8ClampedArray(LUT_SIZE * 4), width: LUT_SIZE, height: 1 };
  for (let i = 0; i < LUT_SIZE; i++) {
    strip.data.set([lut[i * 3]!, lut[i * 3 + 1]!, lut[i * 3 + 2]!, 255], i * 4);
  }
  drawRgba(ctx, strip, box.x, box.y, box.width, box.barHeight);
  ctx.save();
  ctx.strokeStyle = '#444444';
  ctx.lineWidth = 1;
  ctx.strokeRect(box.x + 0.5, box.y + 0.5, box.width - 1, box.barHeight - 1);
  ctx.fillStyle = '#222222';
  ctx.font = fontSpec(fontSize);
  ctx.textBaseline = 'top';
  const labelY = box.y + box.barHeight + 3;
  const ticks: [number, CanvasTextAlign][] = [
    [spec.from, 'left'],
    [(spec.from + spec.to) / 2, 'center'],
    [spec.to, 'right'],
  ];
  ticks.forEach(([value, align], i) => {
    ctx.textAlign = align;
    const clip = spec.clipped && value !== 0 && i !== 1 ? (value > 0 ? '≥ ' : '≤ ') : '';
    ctx.fillText(`${clip}${formatNumber(value)}`, box.x + (box.width * i) / 2, labelY);
  });
  let used = box.barHeight + 3 + lineHeight;
  if (spec.label) {
    ctx.textAlign = 'center';
    ctx.fillText(fitText(ctx, spec.label, box.width), box.x + box.width / 2, labelY + lineHeight);
    used += lineHeight;
  }
  ctx.restore();
  return used;
}

type CanvasTextAlign = 'left' | 'right' | 'center' | 'start' | 'end';
