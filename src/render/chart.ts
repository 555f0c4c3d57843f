/**
 * Line charts for notebooks and the profiler: axes with "nice" ticks, light grid lines, a legend,
 * linear / log2 / log10 x axes (log2 for batch sizes 1..256), and an optional second y axis on the
 * right (e.g. latency left, throughput right). Drawn with @napi-rs/canvas, encoded with sharp.
 *
 * @example
 * const png = await drawLineChart({
 *   title: 'resnet50 over gRPC',
 *   xLabel: 'batch size', xScale: 'log2',
 *   yLabel: 'latency (ms)', y2Label: 'throughput (images/s)',
 *   series: [
 *     { name: 'p50 latency', x: batches, y: p50 },
 *     { name: 'p99 latency', x: batches, y: p99 },
 *     { name: 'throughput', x: batches, y: imagesPerSecond, axis: 'right' },
 *   ],
 * });
 * await writePngAtomic('out/profile.png', png, { model: 'resnet50' });
 */
import type { SKRSContext2D } from '@napi-rs/canvas';
import { LensError } from '../core/errors.js';
import { drawRgba, finishCanvas, fitText, newCanvas, type PictureFormat } from './draw.js';
import { fontSpec } from './fonts.js';
import type { RgbaImage } from './rgba.js';

export type AxisScale = 'linear' | 'log2' | 'log10';

export interface LineSeries {
  name: string;
  x: readonly number[];
  /** Non-finite values (NaN) leave a gap. */
  y: readonly number[];
  /** Which y axis the series uses. Default `left`. */
  axis?: 'left' | 'right';
  /** CSS colour. Default: the next of a 10-colour palette (matplotlib's tab10). */
  color?: string;
  /** Dashed line. Default: true for right-axis series, so the two axes read apart. */
  dashed?: boolean;
  /** A dot at each point. Default true. */
  markers?: boolean;
}

export interface LineChartOptions {
  series: readonly LineSeries[];
  /** `png` (default) or `svg`. */
  format?: PictureFormat;
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Label of the right axis (drawn when a series uses it). */
  y2Label?: string;
  /** Default `linear`. */
  xScale?: AxisScale;
  /** Default `linear`. */
  yScale?: 'linear' | 'log10';
  /** Default `linear`. */
  y2Scale?: 'linear' | 'log10';
  /** Tick positions on the x axis in data units (e.g. the batch sizes measured). */
  xTicks?: readonly number[];
  /** Pixels. Default 800 x 480. */
  width?: number;
  height?: number;
  /** Default 13. */
  fontSize?: number;
  /** Default `top-left` (inside the plot). */
  legend?: 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right' | 'none';
  /** A vertical line at this x (e.g. the alpha a path view shows), labelled with its value. */
  xMarker?: number;
  /** A picture left of the plot (e.g. the interpolated image at `xMarker`), `size` pixels square (default 192), captioned below. */
  aside?: { image: RgbaImage; caption?: readonly string[]; size?: number };
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

interface Axis {
  scale: AxisScale;
  lo: number;
  hi: number;
  ticks: number[];
}

function transform(scale: AxisScale, v: number): number {
  return scale === 'log2' ? Math.log2(v) : scale === 'log10' ? Math.log10(v) : v;
}

/** 1, 2 or 5 times a power of ten, near `raw`. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
}

function buildAxis(values: number[], scale: AxisScale, includeZero: boolean, fixedTicks: readonly number[] | undefined, targetTicks: number, what: string): Axis {
  const all = [...values, ...(fixedTicks ?? [])];
  if (all.length === 0) throw new LensError('INVALID_ARGUMENT', `chart ${what} axis has no finite values`);
  if (scale !== 'linear' && all.some((v) => !(v > 0))) {
    throw new LensError('INVALID_ARGUMENT', `chart ${what} axis is ${scale} but has values <= 0`);
  }
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (scale !== 'linear') {
    const base = scale === 'log2' ? 2 : 10;
    const pLo = Math.floor(transform(scale, lo) + 1e-9);
    const pHi = Math.max(pLo + 1, Math.ceil(transform(scale, hi) - 1e-9));
    const ticks: number[] = [];
    const stride = Math.max(1, Math.ceil((pHi - pLo + 1) / targetTicks));
    for (let p = pLo; p <= pHi; p += stride) ticks.push(base ** p);
    return { scale, lo: base ** pLo, hi: base ** pHi, ticks: fixedTicks ? [...fixedTicks] : ticks };
  }
  if (includeZero && lo >= 0) lo = 0;
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
    if (includeZero && lo < 0 && values.every((v) => v >= 0)) lo = 0;
  }
  const step = niceStep((hi - lo) / targetTicks);
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
  return { scale, lo, hi, ticks: fixedTicks ? [...fixedTicks] : ticks };
}

function tickLabel(v: number): string {
  const abs = Math.abs(v);
  if (v !== 0 && (abs >= 1e7 || abs < 1e-4)) return v.toExponential(2).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(12)));
}

function checkSeries(s: LineSeries): void {
  if (s.x.length !== s.y.length) throw new LensError('INVALID_ARGUMENT', `chart series "${s.name}" has ${s.x.length} x values and ${s.y.length} y values`);
  if (s.x.length === 0) throw new LensError('INVALID_ARGUMENT', `chart series "${s.name}" is empty`);
}

/**
 * Draws a line chart and returns it as PNG bytes.
 *
 * @example
 * const png = await drawLineChart({ xScale: 'log2', series: [{ name: 'p50 ms', x: [1, 2, 4], y: [3.1, 3.9, 6.2] }] });
 */
export async function drawLineChart(options: LineChartOptions): Promise<Buffer> {
  const { series } = options;
  if (series.length === 0) throw new LensError('INVALID_ARGUMENT', 'chart has no series');
  series.forEach(checkSeries);
  const width = options.width ?? 800;
  const height = options.height ?? 480;
  const fontSize = options.fontSize ?? 13;
  const lineHeight = Math.ceil(fontSize * 1.4);
  const xScale = options.xScale ?? 'linear';
  const left = series.filter((s) => (s.axis ?? 'left') === 'left');
  const right = series.filter((s) => s.axis === 'right');
  const finite = (list: LineSeries[], pick: (s: LineSeries, i: number) => number) =>
    list.flatMap((s) => s.x.map((_, i) => pick(s, i))).filter((v) => Number.isFinite(v));
  const pointsOk = (s: LineSeries, i: number) => Number.isFinite(s.x[i]!) && Number.isFinite(s.y[i]!);
  const xValues = finite(series as LineSeries[], (s, i) => (pointsOk(s, i) ? s.x[i]! : NaN));
  const yTarget = Math.max(3, Math.round(height / 70));
  const xAxis = buildAxis(xValues, xScale, false, options.xTicks, Math.max(3, Math.round(width / 90)), 'x');
  const yAxis = left.length > 0 ? buildAxis(finite(left, (s, i) => (pointsOk(s, i) ? s.y[i]! : NaN)), options.yScale ?? 'linear', true, undefined, yTarget, 'left y') : undefined;
  const y2Axis = right.length > 0 ? buildAxis(finite(right, (s, i) => (pointsOk(s, i) ? s.y[i]! : NaN)), options.y2Scale ?? 'linear', true, undefined, yTarget, 'right y') : undefined;

  const { canvas, ctx } = newCanvas(width, height, '#ffffff', options.format ?? 'png');
  ctx.font = fontSpec(fontSize);
  const labelWidth = (axis: Axis | undefined) => (axis ? Math.max(...axis.ticks.map((t) => ctx.measureText(tickLabel(t)).width)) : 0);
  const asideSize = options.aside ? (options.aside.size ?? 192) : 0;
  const asideWidth = options.aside ? asideSize + 24 : 0;
  const plotLeft = Math.ceil(asideWidth + 12 + (options.yLabel && yAxis ? lineHeight + 4 : 0) + labelWidth(yAxis) + 8);
  const plotRight = width - Math.ceil(y2Axis ? 12 + (options.y2Label ? lineHeight + 4 : 0) + labelWidth(y2Axis) + 8 : 24);
  const plotTop = options.title ? Math.ceil(2.2 * lineHeight) : lineHeight;
  const plotBottom = height - Math.ceil(8 + lineHeight + (options.xLabel ? lineHeight + 6 : 0) + 8);
  if (plotRight - plotLeft < 40 || plotBottom - plotTop < 40) throw new LensError('INVALID_ARGUMENT', `chart ${width}x${height} is too small for its labels`);

  // The x range sits a little inside the axes so that end markers are not cut in half.
  const inset = 10;
  const px = (v: number) =>
    plotLeft + inset + ((transform(xAxis.scale, v) - transform(xAxis.scale, xAxis.lo)) / (transform(xAxis.scale, xAxis.hi) - transform(xAxis.scale, xAxis.lo))) * (plotRight - plotLeft - 2 * inset);
  const py = (axis: Axis, v: number) => plotBottom - ((transform(axis.scale, v) - transform(axis.scale, axis.lo)) / (transform(axis.scale, axis.hi) - transform(axis.scale, axis.lo))) * (plotBottom - plotTop);

  // Grid lines, then axes, ticks and labels.
  ctx.strokeStyle = '#e6e6e6';
  ctx.lineWidth = 1;
  const gridAxis = yAxis ?? y2Axis!;
  for (const t of gridAxis.ticks) hLine(ctx, plotLeft, plotRight, Math.round(py(gridAxis, t)) + 0.5);
  for (const t of xAxis.ticks) vLine(ctx, Math.round(px(t)) + 0.5, plotTop, plotBottom);
  ctx.strokeStyle = '#000000';
  hLine(ctx, plotLeft, plotRight, plotBottom + 0.5);
  vLine(ctx, plotLeft + 0.5, plotTop, plotBottom + 1);
  if (y2Axis) vLine(ctx, plotRight + 0.5, plotTop, plotBottom + 1);

  ctx.fillStyle = '#000000';
  ctx.textBaseline = 'top';
  ctx.textAlign = 'center';
  for (const t of xAxis.ticks) {
    const x = Math.round(px(t)) + 0.5;
    vLine(ctx, x, plotBottom, plotBottom + 5);
    ctx.fillText(tickLabel(t), x, plotBottom + 7);
  }
  ctx.textBaseline = 'middle';
  if (yAxis) {
    ctx.textAlign = 'right';
    for (const t of yAxis.ticks) {
      const y = Math.round(py(yAxis, t)) + 0.5;
      hLine(ctx, plotLeft - 5, plotLeft, y);
      ctx.fillText(tickLabel(t), plotLeft - 7, y);
    }
  }
  if (y2Axis) {
    ctx.textAlign = 'left';
    for (const t of y2Axis.ticks) {
      const y = Math.round(py(y2Axis, t)) + 0.5;
      hLine(ctx, plotRight, plotRight + 5, y);
      ctx.fillText(tickLabel(t), plotRight + 7, y);
    }
  }
  ctx.textAlign = 'center';
  if (options.xLabel) {
    ctx.textBaseline = 'bottom';
    ctx.fillText(fitText(ctx, options.xLabel, plotRight - plotLeft), (plotLeft + plotRight) / 2, height - 8);
  }
  ctx.textBaseline = 'top';
  if (options.yLabel && yAxis) rotatedLabel(ctx, options.yLabel, asideWidth + 12, (plotTop + plotBottom) / 2, -Math.PI / 2, plotBottom - plotTop);
  if (options.y2Label && y2Axis) rotatedLabel(ctx, options.y2Label, width - 12, (plotTop + plotBottom) / 2, Math.PI / 2, plotBottom - plotTop);
  if (options.title) {
    ctx.font = fontSpec(Math.round(fontSize * 1.15), 'bold');
    ctx.fillText(fitText(ctx, options.title, width - 24), width / 2, Math.round(lineHeight * 0.5));
    ctx.font = fontSpec(fontSize);
  }

  if (options.aside) {
    drawRgba(ctx, options.aside.image, 12, plotTop, asideSize, asideSize);
    (options.aside.caption ?? []).forEach((line, i) => ctx.fillText(fitText(ctx, line, asideSize + 12), 12 + asideSize / 2, plotTop + asideSize + 6 + i * lineHeight));
  }

  // Series, clipped to the plot.
  const colors = series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]!);
  ctx.save();
  ctx.beginPath();
  ctx.rect(plotLeft, plotTop - 4, plotRight - plotLeft + 1, plotBottom - plotTop + 8);
  ctx.clip();
  series.forEach((s, i) => {
    const axis = s.axis === 'right' ? y2Axis! : yAxis!;
    ctx.strokeStyle = colors[i]!;
    ctx.fillStyle = colors[i]!;
    ctx.lineWidth = 2;
    ctx.setLineDash((s.dashed ?? s.axis === 'right') ? [7, 4] : []);
    ctx.beginPath();
    let drawing = false;
    s.x.forEach((xv, k) => {
      if (!pointsOk(s, k)) {
        drawing = false;
        return;
      }
      const x = px(xv);
      const y = py(axis, s.y[k]!);
      if (drawing) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      drawing = true;
    });
    ctx.stroke();
    ctx.setLineDash([]);
    if (s.markers ?? true) {
      s.x.forEach((xv, k) => {
        if (!pointsOk(s, k)) return;
        ctx.beginPath();
        ctx.arc(px(xv), py(axis, s.y[k]!), 3.5, 0, 2 * Math.PI);
        ctx.fill();
      });
    }
  });
  ctx.restore();

  if (options.xMarker !== undefined && Number.isFinite(options.xMarker)) {
    const x = Math.round(px(options.xMarker)) + 0.5;
    ctx.strokeStyle = '#f5a623';
    ctx.lineWidth = 2;
    vLine(ctx, x, plotTop, plotBottom);
    ctx.fillStyle = '#b36b00';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText(tickLabel(options.xMarker), x, plotTop - 2);
  }

  const legend = options.legend ?? 'top-left';
  if (legend !== 'none') drawLegend(ctx, series, colors, legend, { left: plotLeft, right: plotRight, top: plotTop, bottom: plotBottom }, lineHeight);
  return finishCanvas(canvas);
}

function hLine(ctx: SKRSContext2D, x0: number, x1: number, y: number): void {
  ctx.beginPath();
  ctx.moveTo(x0, y);
  ctx.lineTo(x1, y);
  ctx.stroke();
}

function vLine(ctx: SKRSContext2D, x: number, y0: number, y1: number): void {
  ctx.beginPath();
  ctx.moveTo(x, y0);
  ctx.lineTo(x, y1);
  ctx.stroke();
}

function rotatedLabel(ctx: SKRSContext2D, text: string, x: number, y: number, angle: number, maxWidth: number): void {
  ctx.save();
  ctx.translate(x, y);
  ctx.rotate(angle);
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  ctx.fillText(fitText(ctx, text, maxWidth), 0, 0);
  ctx.restore();
}

function drawLegend(
  ctx: SKRSContext2D,
  series: readonly LineSeries[],
  colors: string[],
  corner: Exclude<LineChartOptions['legend'], 'none' | undefined>,
  plot: { left: number; right: number; top: number; bottom: number },
  lineHeight: number,
): void {
  const swatch = 26;
  const pad = 7;
  const names = series.map((s) => fitText(ctx, s.name, (plot.right - plot.left) / 2));
  const boxWidth = Math.ceil(pad * 2 + swatch + 6 + Math.max(...names.map((n) => ctx.measureText(n).width)));
  const boxHeight = pad * 2 + series.length * lineHeight;
  const x = corner.endsWith('left') ? plot.left + 10 : plot.right - 10 - boxWidth;
  const y = corner.startsWith('top') ? plot.top + 6 : plot.bottom - 10 - boxHeight;
  ctx.save();
  ctx.fillStyle = 'rgba(255, 255, 255, 0.9)';
  ctx.fillRect(x, y, boxWidth, boxHeight);
  ctx.strokeStyle = '#bbbbbb';
  ctx.lineWidth = 1;
  ctx.strokeRect(x + 0.5, y + 0.5, boxWidth - 1, boxHeight - 1);
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  series.forEach((s, i) => {
    const cy = y + pad + i * lineHeight + lineHeight / 2;
    ctx.strokeStyle = colors[i]!;
    ctx.fillStyle = colors[i]!;
    ctx.lineWidth = 2;
    ctx.setLineDash((s.dashed ?? s.axis === 'right') ? [7, 4] : []);
    hLine(ctx, x + pad, x + pad + swatch, cy);
    ctx.setLineDash([]);
    if (s.markers ?? true) {
      ctx.beginPath();
      ctx.arc(x + pad + swatch / 2, cy, 3.5, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.fillStyle = '#111111';
    ctx.fillText(names[i]!, x + pad + swatch + 6, cy);
  });
  ctx.restore();
}
