/**
 * The notebook workbench: inline display for the tslab kernel (images, SVG, tables, markdown, a
 * live progress line), pictures and charts of attributions and integration paths, servable
 * validation, and the environment helpers (model, images, server) that let the notebooks in
 * `notebooks/` run offline by default and against a real TF Serving via `LENS_SERVER`.
 *
 * @example
 * import * as lens from '../dist/index.js';   // in a notebook cell (after `npm run build`)
 * const model = await lens.loadImageModel(lens.notebookModelSpec());
 * const [sample] = await lens.sampleImages({ dir: '/tmp/samples', size: model.inputShape[0], count: 1 });
 * const image = await lens.loadPixels(sample.path, { size: [64, 64] });
 * const ig = await lens.integratedGradients(model, image, { baseline: 'black' });
 * lens.show(await lens.visualizationsPng(ig, image));
 */
export * from './display.js';
export * from './pictures.js';
export * from './charts.js';
export * from './servable.js';
export * from './workbench.js';
export * from './studio.js';
