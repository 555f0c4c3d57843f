/**
 * The view every front end opens with (`lens explain`, `lens compare`, `lens batch`, the studio's
 * first picture, saved PNGs): |attribution| coloured over the dimmed photo. Types only are imported,
 * so the CLI reads its flag defaults from here without loading the drawing code.
 *
 * @example
 * visualize(attr, { method: DEFAULT_VIEW.viz, sign: DEFAULT_VIEW.sign, image: pixels });
 */
import type { AttributionSign } from './normalize.js';
import type { VisualizationMethod } from './visualize.js';

/** The default view: see docs/attribution-views.md for the comparison it was chosen from. */
export const DEFAULT_VIEW: { readonly viz: VisualizationMethod; readonly sign: AttributionSign } = { viz: 'overlay', sign: 'absolute_value' };
