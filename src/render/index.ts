/**
 * Pictures and files for attributions: named visualization conventions (Captum, PAIR saliency,
 * outlines, overlays), colormaps, comparison grids with colour bars, line charts, PNGs with text
 * metadata, `.npy` arrays and JSON summaries, all written atomically.
 *
 * @example
 * import { visualize, sharedScale, renderGrid, attributionTitle, attributionPngText, writePngAtomic, writeNpy } from 'serving-lens';
 *
 * const scale = sharedScale(attrs, { method: 'blended_heat_map', sign: 'positive' });
 * const cells = attrs.map((a) => ({
 *   image: visualize(a, { method: 'blended_heat_map', sign: 'positive', image: pixels, scale }),
 *   title: attributionTitle(a),
 * }));
 * await writePngAtomic('out/grid.png', await renderGrid({ cells: [cells] }), attributionPngText(attrs[0]));
 * await writeNpy('out/black.npy', attrs[0].data, [attrs[0].height, attrs[0].width, attrs[0].channels]);
 */
export {
  COLORMAP_NAMES,
  LUT_SIZE,
  colorAt,
  colormapLut,
  isColormapName,
  lutIndex,
  parseColormap,
  type BaseColormapName,
  type ColormapName,
} from './colormap.js';
export {
  ATTRIBUTION_SIGNS,
  captumNormalize,
  checkAttributionMap,
  cumulativeSumThreshold,
  numpyPercentile,
  parseAttributionSign,
  saliencyDiverging,
  saliencyGrayscale,
  topMassMask,
  type AttributionMap,
  type AttributionSign,
  type CaptumNormalizeOptions,
  type PixelValues,
  type SaliencyOptions,
  type TopMassOptions,
} from './normalize.js';
export {
  VISUALIZATION_METHODS,
  captumDefaultColormap,
  parseVisualizationMethod,
  sharedScale,
  visualize,
  type ColorbarSpec,
  type SharedScaleOptions,
  type Visualization,
  type VisualizationMethod,
  type VisualizeOptions,
} from './visualize.js';
export { DEFAULT_VIEW } from './default-view.js';
export { createRgba, encodeRgbaPng, rgbaFromImage, type ImageLike, type RgbaImage } from './rgba.js';
export { gridPanels, gridSize, renderGrid, type GridCell, type GridOptions, type GridPanel } from './grid.js';
export type { PictureFormat } from './draw.js';
export { CORNERS, INSET_MIN, quietestCorner, renderOnPhoto, type Corner, type PhotoLegend } from './photo.js';
export { formatNumber, formatProbability } from './format.js';
export { drawLineChart, type AxisScale, type LegendPlacement, type LineChartOptions, type LineSeries } from './chart.js';
export { attributionPngText, attributionTitle, type AttributionMeta } from './meta.js';
export { addPngText, readPngChunks, readPngText, writePngAtomic, type PngChunk, type PngText, type PngTextValue } from './png.js';
export { decodeNpy, encodeNpy, readNpy, writeNpy, type NpyArray, type NpyFile } from './npy.js';
export { writeJsonAtomic } from './files.js';
export { ensureFont, FONT_FAMILY } from './fonts.js';
