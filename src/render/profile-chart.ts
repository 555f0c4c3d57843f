/**
 * The profiler's chart: p50 and p99 latency (left axis, ms) and throughput (dashed, right axis,
 * images/s) against batch size on a log2 axis, one set of lines per concurrency level. Drawn by the
 * shared chart renderer in src/render and returned as PNG bytes, or SVG bytes for papers.
 *
 * @example
 * await writeFile('profile.png', await profileChart(result));
 * await writeFile('profile.svg', await profileChart(result, { format: 'svg' }));
 */
import { drawLineChart, type LineSeries } from './chart.js';
import type { PictureFormat } from './draw.js';
import type { ProfileResult } from '../serving/profiler.js';

/** Renders the chart of a profile result, 960 x 540 unless sized, as PNG unless `format` says `svg`. */
export async function profileChart(result: ProfileResult, options: { width?: number; height?: number; format?: PictureFormat } = {}): Promise<Buffer> {
  const rows = result.rows.filter((r) => r.requests > r.errors);
  const sizes = [...new Set(result.rows.map((r) => r.batchSize))].sort((a, b) => a - b);
  const levels = [...new Set(result.rows.map((r) => r.concurrency))].sort((a, b) => a - b);
  const series: LineSeries[] = [];
  for (const level of levels) {
    const pts = rows.filter((r) => r.concurrency === level).sort((a, b) => a.batchSize - b.batchSize);
    const x = pts.map((r) => r.batchSize);
    const tag = levels.length > 1 ? ` (concurrency ${level})` : '';
    series.push({ name: `p50 latency${tag}`, x, y: pts.map((r) => r.p50Ms) });
    series.push({ name: `p99 latency${tag}`, x, y: pts.map((r) => r.p99Ms), markers: false });
    series.push({ name: `images/s${tag}`, x, y: pts.map((r) => r.imagesPerSec), axis: 'right' });
  }
  const errors = result.rows.reduce((a, r) => a + r.errors, 0);
  return drawLineChart({
    title: `${result.model} over ${result.transport.toUpperCase()}: latency and throughput vs batch size${errors ? ` (${errors} errors)` : ''}`,
    xLabel: `batch size (${result.trials} requests per point after ${result.warmup} warm-up)`,
    yLabel: 'latency (ms)',
    y2Label: 'throughput (images/s)',
    xScale: 'log2',
    xTicks: sizes,
    series,
    width: options.width ?? 960,
    height: options.height ?? 540,
    format: options.format ?? 'png',
  });
}
