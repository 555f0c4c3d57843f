/**
 * Attribution: methods as pure async functions `(model, image, options) -> Attribution` over the
 * ImageModel interface, with baselines, integration rules and quality metrics.
 */
export * from './types.js';
export { seededRandom, type Random } from '../core/random.js';
export * from './integration.js';
export { ADAPTIVE_INITIAL_SEGMENTS, ADAPTIVE_TOLERANCE } from './adaptive-rules.js';
export * from './baselines.js';
export { defaultBatchSize, forwardRows, toProbabilities, type PathPoint } from './engine.js';
export * from './targets.js';
export * from './integrated-gradients.js';
export * from './gradients.js';
export * from './blur-ig.js';
export * from './guided-ig.js';
export * from './segmentation.js';
export * from './xrai.js';
export * from './gradcam.js';
export * from './occlusion.js';
export * from './rise.js';
export { attributionCurve, trapezoidArea, maskScores, cellShareCeiling, imagePixels, modelRandomization, type Curve, type CurveFill, type CurveOptions, type MaskScores, type RandomizationOptions, type RandomizationStep } from './metrics.js';
export * from './stats.js';
export * from './methods.js';
export { gaussianBlur, channelSum } from './image-ops.js';
export * from './model-check.js';
export * from './served-parity.js';
export * from './compare.js';
