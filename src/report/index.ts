/** Explanations written to disk: attribution maps with their pictures and summaries. */
export * from './save.js';
export * from './views.js';
export { compareMarkdown, compareCsv, formatMetric } from './compare.js';
export { csvField } from './csv.js';
