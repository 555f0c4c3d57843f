/** A small SVG line chart drawn from data in the page (so moving a slider redraws it at once), which saves as SVG. */
import { useRef } from 'preact/hooks';

const CHART_STYLE = `.grid{stroke:#eee}.tick{font-size:10px;fill:#444}.axis{font-size:11px;fill:#222}.chart-title{font-size:12px;font-weight:bold}.marker{stroke:#f5a623;stroke-width:2}`;

export interface Series {
  name: string;
  x: readonly number[];
  y: readonly number[];
  color: string;
  dashed?: boolean;
  /** Draw a dot at each point (e.g. where an integration rule placed its points). */
  dots?: boolean;
}

export interface Bars {
  name: string;
  x: readonly number[];
  /** Heights drawn against their own right-hand axis. */
  y: readonly number[];
  color: string;
}

export interface ChartProps {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  bars?: Bars;
  /** A vertical marker (the slider's position). */
  marker?: number;
  xRange?: [number, number];
  width?: number;
  height?: number;
}

const MARGIN = { left: 52, right: 52, top: 24, bottom: 40 };
const LEGEND_COLUMNS = 2;
const LEGEND_ROW = 14;

function extent(values: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (lo === hi) return [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

const tickText = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : Number(v.toPrecision(3)).toString());

export function Chart(props: ChartProps) {
  const legendRows = Math.ceil(props.series.length / LEGEND_COLUMNS);
  // The legend sits above the plot, so it never covers a line.
  const M = { ...MARGIN, top: MARGIN.top + legendRows * LEGEND_ROW };
  const width = props.width ?? 520;
  const height = (props.height ?? 240) + legendRows * LEGEND_ROW;
  const [x0, x1] = props.xRange ?? extent(props.series.flatMap((s) => s.x));
  const [y0, y1] = extent(props.series.flatMap((s) => s.y));
  const innerW = width - M.left - M.right;
  const innerH = height - M.top - M.bottom;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0 || 1)) * innerW;
  const sy = (y: number) => M.top + (1 - (y - y0) / (y1 - y0 || 1)) * innerH;
  const barMax = props.bars ? Math.max(1e-30, ...props.bars.y.filter(Number.isFinite).map(Math.abs)) : 1;
  const ticks = (lo: number, hi: number) => [0, 0.25, 0.5, 0.75, 1].map((t) => lo + t * (hi - lo));
  const svg = useRef<SVGSVGElement>(null);
  const save = () => {
    if (!svg.current) return;
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([`<?xml version="1.0" encoding="UTF-8"?>\n${svg.current.outerHTML}\n`], { type: 'image/svg+xml' }));
    link.download = `${props.title.replace(/[^\w]+/g, '-').replace(/^-|-$/g, '').toLowerCase() || 'chart'}.svg`;
    link.click();
    URL.revokeObjectURL(link.href);
  };
  return (
    <figure class="chart-figure">
      <svg ref={svg} xmlns="http://www.w3.org/2000/svg" class="chart" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={props.title} font-family="DejaVu Sans, sans-serif">
        {/* Styles inside the SVG, so a saved chart looks as it does in the page. */}
        <style>{CHART_STYLE}</style>
        <rect width={width} height={height} fill="white" />
        <text x={M.left} y={14} class="chart-title">
          {props.title}
        </text>
        {ticks(y0, y1).map((v) => (
          <g key={`y${v}`}>
            <line x1={M.left} x2={width - M.right} y1={sy(v)} y2={sy(v)} class="grid" />
            <text x={M.left - 4} y={sy(v) + 4} text-anchor="end" class="tick">
              {tickText(v)}
            </text>
          </g>
        ))}
        {ticks(x0, x1).map((v) => (
          <text key={`x${v}`} x={sx(v)} y={height - M.bottom + 14} text-anchor="middle" class="tick">
            {tickText(v)}
          </text>
        ))}
        <text x={M.left + innerW / 2} y={height - 6} text-anchor="middle" class="axis">
          {props.xLabel}
        </text>
        <text x={12} y={M.top + innerH / 2} transform={`rotate(-90 12 ${M.top + innerH / 2})`} text-anchor="middle" class="axis">
          {props.yLabel}
        </text>
        {props.bars && (
          <g>
            {props.bars.x.map((x, i) => {
              const v = props.bars!.y[i]!;
              if (!Number.isFinite(v)) return null;
              const h = (Math.abs(v) / barMax) * innerH * 0.9;
              return <rect key={i} x={sx(x) - 1.5} width={3} y={M.top + innerH - h} height={h} fill={props.bars!.color} opacity={0.55} />;
            })}
            <text x={width - M.right + 4} y={M.top + 10} class="tick" fill={props.bars.color}>
              {props.bars.name}
            </text>
            <text x={width - M.right + 4} y={M.top + 24} class="tick" fill={props.bars.color}>
              max {tickText(barMax)}
            </text>
          </g>
        )}
        {props.series.map((s) => {
          const order = s.x.map((_, i) => i).sort((a, b) => s.x[a]! - s.x[b]!);
          const d = order.map((i, k) => `${k === 0 ? 'M' : 'L'}${sx(s.x[i]!).toFixed(1)},${sy(s.y[i]!).toFixed(1)}`).join('');
          return (
            <g key={s.name}>
              <path d={d} fill="none" stroke={s.color} stroke-width={2} stroke-dasharray={s.dashed ? '6 4' : undefined} />
              {s.dots && s.x.map((x, i) => <circle key={i} cx={sx(x)} cy={sy(s.y[i]!)} r={2.5} fill={s.color} />)}
            </g>
          );
        })}
        {props.marker !== undefined && <line class="marker" x1={sx(props.marker)} x2={sx(props.marker)} y1={M.top} y2={M.top + innerH} />}
        <g>
          {props.series.map((s, i) => (
            <g key={`legend${s.name}`} transform={`translate(${M.left + (i % LEGEND_COLUMNS) * ((width - M.left - M.right) / LEGEND_COLUMNS)}, ${MARGIN.top + 6 + Math.floor(i / LEGEND_COLUMNS) * LEGEND_ROW})`}>
              <line x1={0} x2={16} y1={-4} y2={-4} stroke={s.color} stroke-width={2} stroke-dasharray={s.dashed ? '4 3' : undefined} />
              <text x={20} y={0} class="tick">
                {s.name}
              </text>
            </g>
          ))}
        </g>
      </svg>
      <button type="button" class="save-chart" onClick={save}>
        Save chart (SVG)
      </button>
    </figure>
  );
}
