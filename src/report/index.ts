/** Explanations written to disk: attribution maps with their pictures and summaries. */
export * from './save.js';
export * from './views.js';
