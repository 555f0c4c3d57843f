/**
 * `lens studio`: a browser workbench over the library (the server side; the front end lives in
 * studio/ and is bundled into dist/studio-web by `npm run build`).
 *
 * @example
 * import { startStudio } from '../dist/studio/index.js';   // from a checkout (notebooks use lens.studio() instead)
 * const studio = await startStudio({ model: 'default', images: ['../shared/photos'] });
 * console.log(studio.url);
 */
export { startStudio, studioApp, WEB_DIR, type RunningStudio, type StudioOptions } from './server.js';
export { StudioSession, type ExplainRequest, type ModelKind, type SessionOptions, type StudioAttribution, type StudioImage } from './session.js';
export type * from './wire.js';
export { explainCommandLine, exportAttribution, exportCurvesView, exportPathView, gridSvg, type ExportedFiles } from './export.js';
