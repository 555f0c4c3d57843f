/**
 * Line charts for notebooks and the profiler: axes with "nice" ticks, light grid lines, a legend,
 * linear / log2 / log10 x axes (log2 for batch sizes 1..256), and an optional second y axis on the
 * right (e.g. latency left, throughput right). Drawn with @napi-rs/canvas, encoded with sharp.
 * The legend goes where it covers no data: in the first corner (or the middle of the top or bottom
 * edge) of the plot that no line or marker passes through, else in a column right of the plot.
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
  /**
   * Default `auto`: the first of top-left, top-right, bottom-left, bottom-right, top middle, bottom
   * middle where the legend box covers no line, marker or x marker; when every one does, `outside`
   * (a column right of the plot, which narrows). A named corner puts it there whatever it covers.
   */
  legend?: LegendPlacement;
  /** A vertical line at this x (e.g. the alpha a path view shows), labelled with its value. */
  xMarker?: number;
  /** A picture left of the plot (e.g. the interpolated image at `xMarker`), `size` pixels square (default 192), captioned below. */
  aside?: { image: RgbaImage; caption?: readonly string[]; size?: number };
}

export type LegendPlacement = 'auto' | 'outside' | 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right' | 'none';
type LegendSpot = (typeof LEGEND_SPOTS)[number];
/** The places in the plot `auto` tries, in order of preference. */
const LEGEND_SPOTS = ['top-left', 'top-right', 'bottom-left', 'bottom-right', 'top', 'bottom'] as const;

interface Rect {
  left: number;
  right: number;
  top: number;
  bottom: number;
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
  const rightMargin = Math.ceil(y2Axis ? 12 + (options.y2Label ? lineHeight + 4 : 0) + labelWidth(y2Axis) + 8 : 24);
  /** The plot area, `reserved` pixels narrower on the right (for a legend outside it). */
  const frame = (reserved: number): Rect => ({
    left: Math.ceil(asideWidth + 12 + (options.yLabel && yAxis ? lineHeight + 4 : 0) + labelWidth(yAxis) + 8),
    right: width - rightMargin - reserved,
    top: options.title ? Math.ceil(2.2 * lineHeight) : lineHeight,
    bottom: height - Math.ceil(8 + lineHeight + (options.xLabel ? lineHeight + 6 : 0) + 8),
  });
  const tooSmall = (r: Rect) => r.right - r.left < 40 || r.bottom - r.top < 40;
  if (tooSmall(frame(0))) throw new LensError('INVALID_ARGUMENT', `chart ${width}x${height} is too small for its labels`);

  // The x range sits a little inside the axes so that end markers are not cut in half.
  const inset = 10;
  const projection = (r: Rect) => ({
    px: (v: number) =>
      r.left + inset + ((transform(xAxis.scale, v) - transform(xAxis.scale, xAxis.lo)) / (transform(xAxis.scale, xAxis.hi) - transform(xAxis.scale, xAxis.lo))) * (r.right - r.left - 2 * inset),
    py: (axis: Axis, v: number) => r.bottom - ((transform(axis.scale, v) - transform(axis.scale, axis.lo)) / (transform(axis.scale, axis.hi) - transform(axis.scale, axis.lo))) * (r.bottom - r.top),
  });
  /** What the plot draws in `r`, as pixel polylines: each series' unbroken runs, and the x marker. */
  const drawnPaths = (r: Rect): { x: number; y: number }[][] => {
    const { px, py } = projection(r);
    const paths: { x: number; y: number }[][] = [];
    for (const s of series) {
      const axis = s.axis === 'right' ? y2Axis! : yAxis!;
      let run: { x: number; y: number }[] = [];
      s.x.forEach((xv, k) => {
        if (pointsOk(s, k)) run.push({ x: px(xv), y: py(axis, s.y[k]!) });
        else if (run.length > 0) {
          paths.push(run);
          run = [];
        }
      });
      if (run.length > 0) paths.push(run);
    }
    if (options.xMarker !== undefined && Number.isFinite(options.xMarker)) {
      const x = px(options.xMarker);
      paths.push([{ x, y: r.top }, { x, y: r.bottom }]);
    }
    return paths;
  };

  const legendChoice = options.legend ?? 'auto';
  const legend = legendChoice === 'none' ? undefined : legendBox(ctx, series, lineHeight, Math.max(120, 0.4 * (width - asideWidth)));
  let plot = frame(0);
  let legendAt: { x: number; y: number } | undefined;
  if (legend) {
    const inCorner = (spot: LegendSpot, r: Rect) => ({
      x: spot.endsWith('left') ? r.left + 10 : spot.endsWith('right') ? r.right - 10 - legend.width : Math.round((r.left + r.right - legend.width) / 2),
      y: spot.startsWith('top') ? r.top + 6 : r.bottom - 10 - legend.height,
    });
    const outside = frame(legend.width + 12);
    if (legendChoice !== 'auto' && legendChoice !== 'outside' && legendChoice !== 'none') {
      legendAt = inCorner(legendChoice, plot);
    } else {
      const paths = drawnPaths(plot);
      const fits = legend.width + 20 <= plot.right - plot.left && legend.height + 16 <= plot.bottom - plot.top;
      const covered = (spot: LegendSpot) => {
        const at = inCorner(spot, plot);
        return pathsInBox(paths, { left: at.x, right: at.x + legend.width, top: at.y, bottom: at.y + legend.height }, LEGEND_CLEARANCE);
      };
      const free = legendChoice === 'auto' && fits ? LEGEND_SPOTS.find((c) => covered(c) === 0) : undefined;
      // A narrower plot is better than a covered line, unless the plot would shrink to half its width.
      if (free) legendAt = inCorner(free, plot);
      else if (!tooSmall(outside) && (legendChoice === 'outside' || outside.right - outside.left >= (plot.right - plot.left) / 2)) {
        plot = outside;
        legendAt = { x: width - 12 - legend.width, y: plot.top };
      } else {
        legendAt = inCorner(LEGEND_SPOTS.reduce((best, c) => (covered(c) < covered(best) ? c : best)), plot);
      }
    }
  }
  const { left: plotLeft, right: plotRight, top: plotTop, bottom: plotBottom } = plot;
  const { px, py } = projection(plot);

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
  if (options.y2Label && y2Axis) rotatedLabel(ctx, options.y2Label, plotRight + rightMargin - 12, (plotTop + plotBottom) / 2, Math.PI / 2, plotBottom - plotTop);
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

  if (legend && legendAt) drawLegend(ctx, series, colors, legend, legendAt, lineHeight);
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

/** Pixels kept between the legend box and the centre of any drawn line (markers have a radius of 3.5, lines a width of 2). */
const LEGEND_CLEARANCE = 5;
const LEGEND_SWATCH = 26;
const LEGEND_PAD = 7;

interface LegendBox {
  /** Series names, shortened to fit. */
  names: string[];
  width: number;
  height: number;
}

function legendBox(ctx: SKRSContext2D, series: readonly LineSeries[], lineHeight: number, maxNameWidth: number): LegendBox {
  const names = series.map((s) => fitText(ctx, s.name, maxNameWidth));
  const width = Math.ceil(LEGEND_PAD * 2 + LEGEND_SWATCH + 6 + Math.max(...names.map((n) => ctx.measureText(n).width)));
  return { names, width, height: LEGEND_PAD * 2 + series.length * lineHeight };
}

/**
 * How many polyline segments (single points count as one) pass within `clearance` pixels of `box`:
 * each is clipped to the grown box (Liang-Barsky) and counts when anything of it is left.
 */
function pathsInBox(paths: readonly { x: number; y: number }[][], box: Rect, clearance: number): number {
  const [l, r, t, b] = [box.left - clearance, box.right + clearance, box.top - clearance, box.bottom + clearance];
  const hits = (p: { x: number; y: number }, q: { x: number; y: number }): boolean => {
    const dx = q.x - p.x;
    const dy = q.y - p.y;
    let t0 = 0;
    let t1 = 1;
    for (const [den, num] of [[-dx, p.x - l], [dx, r - p.x], [-dy, p.y - t], [dy, b - p.y]] as const) {
      if (den === 0) {
        if (num < 0) return false;
      } else {
        const u = num / den;
        if (den < 0) t0 = Math.max(t0, u);
        else t1 = Math.min(t1, u);
        if (t0 > t1) return false;
      }
    }
    return true;
  };
  let count = 0;
  for (const path of paths) {
    if (path.length === 1) count += hits(path[0]!, path[0]!) ? 1 : 0;
    for (let i = 1; i < path.length; i++) count += hits(path[i - 1]!, path[i]!) ? 1 : 0;
  }
  return count;
}

function drawLegend(ctx: SKRSContext2D, series: readonly LineSeries[], colors: string[], box: LegendBox, at: { x: number; y: number }, lineHeight: number): void {
  const swatch = LEGEND_SWATCH;
  const pad = LEGEND_PAD;
  const { names } = box;
  const { x, y } = at;
  ctx.save();
  ctx.fillStyle = 'rgba(255, 255, 255, 0.9)';
  ctx.fillRect(x, y, box.width, box.height);
  ctx.strokeStyle = '#bbbbbb';
  ctx.lineWidth = 1;
  ctx.strokeRect(x + 0.5, y + 0.5, box.width - 1, box.height - 1);
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
