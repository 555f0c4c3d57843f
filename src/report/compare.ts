/**
 * The baseline comparison (attribution/compare.ts) as tables: a markdown summary with 95%
 * intervals and one CSV line per image and baseline.
 */
import { COMPARE_METRICS, type CompareMetric, type CompareResult, type CompareRow } from '../attribution/compare.js';
import { formatNumber } from '../render/format.js';
import { csvField } from './csv.js';

const METRIC_TITLES: Record<CompareMetric, string> = {
  relativeDelta: 'relative delta',
  deletionAuc: 'deletion AUC (lower is better)',
  insertionAuc: 'insertion AUC (higher is better)',
  maskShare: 'positive share in mask',
  pointing: 'pointing game',
};

/** Metrics that are shares or probabilities in [0, 1], printed with 3 decimals. */
const UNIT_METRICS: ReadonlySet<CompareMetric> = new Set<CompareMetric>(['deletionAuc', 'insertionAuc', 'maskShare', 'pointing']);

/** A metric value as tables print it: 3 decimals for [0, 1] metrics, relative deltas in percent (3 significant digits). */
export function formatMetric(metric: CompareMetric, v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (UNIT_METRICS.has(metric)) return v.toFixed(3);
  return `${formatNumber(v * 100)}%`;
}

/**
 * The per-baseline summary as a markdown table: mean [95% interval] per metric.
 *
 * @example
 * await writeFile('compare.md', compareMarkdown(result));
 */
export function compareMarkdown(result: CompareResult, title = 'IG baselines'): string {
  const metrics = COMPARE_METRICS.filter((m) => result.baselines.some((b) => result.summary[b]?.[m]));
  const n = result.rows.length / Math.max(1, result.baselines.length);
  const lines = [
    `# ${title}`,
    '',
    `${n} images; each cell is the mean with its 95% confidence interval (percentile bootstrap, 4000 resamples${metrics.includes('pointing') ? '; for the pointing game, the share of hits with its Wilson score interval' : ''}). Shares and AUCs to 3 decimals; the relative delta |sum - (F(x) - F(x'))| / |F(x) - F(x')| in percent.`,
    '',
    `| baseline | ${metrics.map((m) => METRIC_TITLES[m]).join(' | ')} |`,
    `|---|${metrics.map(() => '---').join('|')}|`,
  ];
  for (const b of result.baselines) {
    const cells = metrics.map((m) => {
      const s = result.summary[b]?.[m];
      return s ? `${formatMetric(m, s.mean)} [${formatMetric(m, s.low)}, ${formatMetric(m, s.high)}]` : '-';
    });
    lines.push(`| ${b} | ${cells.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * One CSV line per image and baseline.
 *
 * @example
 * await writeFile('compare.csv', compareCsv(result));
 */
export function compareCsv(result: CompareResult): string {
  const columns: (keyof CompareRow)[] = ['image', 'baseline', 'target', 'label', 'probability', 'delta', 'relativeDelta', 'deletionAuc', 'insertionAuc', 'maskShare', 'pointing'];
  const lines = [columns.join(',')];
  for (const r of result.rows) lines.push(columns.map((c) => csvField(r[c])).join(','));
  return `${lines.join('\n')}\n`;
}
