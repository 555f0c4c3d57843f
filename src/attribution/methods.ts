/**
 * Every method under one name, for the CLI and for code that picks methods from configuration:
 * `runMethod('ig', model, image, { steps: 64 })`. SmoothGrad and VarGrad wrap another method,
 * named after a colon: `smoothgrad:ig`, `vargrad:gradient`.
 */
import { LensError } from '../core/errors.js';
import type { ImageModel } from '../core/model.js';
import type { BaselineSpec } from './baselines.js';
import { blurIntegratedGradients } from './blur-ig.js';
import { gradCam } from './gradcam.js';
import { gradientTimesInput, smoothGrad, vanillaGradient, varGrad } from './gradients.js';
import { guidedIntegratedGradients } from './guided-ig.js';
import { expectedGradients, integratedGradients } from './integrated-gradients.js';
import type { IgRule } from './integration.js';
import { keepPadding, zeroPadding } from './image-ops.js';
import { occlusion } from './occlusion.js';
import { rise, type RiseFill } from './rise.js';
import type { Attribution, AttributionMethod, CommonOptions, ImageInput } from './types.js';
import { xrai } from './xrai.js';

export const METHOD_NAMES = ['ig', 'eg', 'gradient', 'gradient_x_input', 'smoothgrad', 'vargrad', 'blur_ig', 'guided_ig', 'xrai', 'gradcam', 'occlusion', 'rise'] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

/** Methods that need only forward calls, and so run against a remote TF Serving model. */
export const FORWARD_ONLY_METHODS: readonly MethodName[] = ['occlusion', 'rise'];

const ALIASES: Record<string, MethodName> = {
  integrated_gradients: 'ig',
  expected_gradients: 'eg',
  saliency: 'gradient',
  vanilla: 'gradient',
  vanilla_gradient: 'gradient',
  gxi: 'gradient_x_input',
  input_x_gradient: 'gradient_x_input',
  blurig: 'blur_ig',
  guidedig: 'guided_ig',
  grad_cam: 'gradcam',
};

/** A method name with, for SmoothGrad and VarGrad, the method they wrap. */
export interface ParsedMethod {
  name: MethodName;
  inner?: MethodName;
}

/**
 * Parses a method name (`ig`, `integrated-gradients`, `smoothgrad:ig`, ...).
 *
 * @example
 * parseMethod('smoothgrad:ig'); // { name: 'smoothgrad', inner: 'ig' }
 */
export function parseMethod(value: string): ParsedMethod {
  const [outerText, innerText] = value.split(':');
  const one = (text: string): MethodName => {
    const v = text.trim().toLowerCase().replace(/-/g, '_');
    const name = ALIASES[v] ?? v;
    if ((METHOD_NAMES as readonly string[]).includes(name)) return name as MethodName;
    throw new LensError('INVALID_ARGUMENT', `unknown method "${text}": expected one of ${METHOD_NAMES.join(', ')} (smoothgrad:METHOD and vargrad:METHOD wrap another)`);
  };
  const name = one(outerText ?? '');
  if (innerText === undefined) return name === 'smoothgrad' || name === 'vargrad' ? { name, inner: 'gradient' } : { name };
  if (name !== 'smoothgrad' && name !== 'vargrad') throw new LensError('INVALID_ARGUMENT', `method ${name} does not wrap another method ("${value}")`);
  const inner = one(innerText);
  if (inner === 'smoothgrad' || inner === 'vargrad') throw new LensError('INVALID_ARGUMENT', `${name} cannot wrap ${inner}`);
  return { name, inner };
}

/** Settings a method may use; each method takes what applies to it and ignores the rest. */
export interface MethodSettings extends CommonOptions {
  baseline?: BaselineSpec;
  /** IG/Blur IG/Guided IG steps, Expected Gradients samples, XRAI's IG steps. */
  steps?: number;
  rule?: IgRule;
  /** IG with rule 'adaptive': relative completeness delta to stop under. */
  tolerance?: number;
  /** IG: the relative L2 map error to reach (rule 'map_adaptive'). */
  mapTolerance?: number;
  /** IG with rule 'nonuniform' or 'adaptive': sweep or initial segments. */
  segments?: number;
  /** Expected Gradients reference images. */
  references?: readonly ImageInput[];
  /** SmoothGrad/VarGrad noisy samples. */
  samples?: number;
  stdevFraction?: number;
  magnitude?: boolean;
  /** Blur IG. */
  maxSigma?: number;
  /** Grad-CAM layer. */
  layer?: string;
  /** Occlusion window and stride. */
  window?: number;
  stride?: number;
  /** RISE masks and grid cells. */
  masks?: number;
  cells?: number;
  /** RISE: what masked-out pixels become. */
  riseFill?: RiseFill;
  returnPath?: boolean | 'gradients';
}

function pick<T extends object>(settings: MethodSettings, keys: (keyof MethodSettings)[]): T {
  const out: Record<string, unknown> = {};
  for (const k of ['target', 'batchSize', 'seed', 'inputScores', 'onProgress', 'signal', ...keys] as (keyof MethodSettings)[]) {
    if (settings[k] !== undefined) out[k] = settings[k];
  }
  return out as T;
}

function single(name: MethodName): AttributionMethod<MethodSettings> {
  // The plain gradient methods are passed as themselves, so SmoothGrad can batch their samples.
  if (name === 'gradient') return vanillaGradient;
  if (name === 'gradient_x_input') return gradientTimesInput;
  return (model, image, s = {}) => {
    switch (name) {
      case 'ig':
        return integratedGradients(model, image, pick(s, ['baseline', 'steps', 'rule', 'tolerance', 'mapTolerance', 'segments', 'returnPath']));
      case 'eg':
        if (!s.references?.length) throw new LensError('INVALID_ARGUMENT', 'expected gradients (eg) needs reference images to draw baselines from');
        return expectedGradients(model, image, {
          ...pick(s, ['returnPath']),
          // References are baselines: equal to the input on its padding, like every baseline.
          references: s.references.map((r) => ({ ...r, data: keepPadding(image, new Float32Array(r.data)) })),
          ...(s.steps !== undefined ? { samples: s.steps } : {}),
        });
      case 'blur_ig':
        return blurIntegratedGradients(model, image, pick(s, ['steps', 'maxSigma', 'returnPath']));
      case 'guided_ig':
        return guidedIntegratedGradients(model, image, pick(s, ['baseline', 'steps']));
      case 'xrai':
        return xrai(model, image, pick(s, ['steps']));
      case 'gradcam':
        return gradCam(model, image, pick(s, ['layer']));
      case 'occlusion':
        return occlusion(model, image, { ...pick(s, ['window', 'stride']), ...(s.baseline !== undefined ? { fill: s.baseline } : {}) });
      case 'rise':
        return rise(model, image, pick(s, ['masks', 'cells', 'riseFill']));
      default:
        throw new LensError('INTERNAL', `method ${name} is not a single method`);
    }
  };
}

/**
 * Runs a method by name.
 *
 * @example
 * const attr = await runMethod(parseMethod('smoothgrad:ig'), model, image, { samples: 10, steps: 16 });
 */
export async function runMethod(method: ParsedMethod | MethodName, model: ImageModel, image: ImageInput, settings: MethodSettings = {}): Promise<Attribution> {
  const attribution = await runParsed(typeof method === 'string' ? parseMethod(method) : method, model, image, settings);
  // Path methods leave padding at zero by construction (their baselines equal the input there);
  // the others are masked, since padding is not image. The geometry travels with the map.
  zeroPadding(image, attribution.data);
  return image.geometry ? { ...attribution, geometry: image.geometry } : attribution;
}

function runParsed(m: ParsedMethod, model: ImageModel, image: ImageInput, settings: MethodSettings): Promise<Attribution> {
  if (m.name === 'smoothgrad' || m.name === 'vargrad') {
    const inner = single(m.inner ?? 'gradient');
    // The inner method reports no progress of its own; the wrapper counts samples. It explains
    // noisy copies, whose scores are not the input's.
    const { onProgress: _ignored, inputScores: _input, ...innerSettings } = settings;
    const options = {
      ...pick<CommonOptions>(settings, []),
      ...(settings.samples !== undefined ? { samples: settings.samples } : {}),
      ...(settings.stdevFraction !== undefined ? { stdevFraction: settings.stdevFraction } : {}),
      methodOptions: innerSettings,
    };
    return m.name === 'smoothgrad' ? smoothGrad(inner, model, image, { ...options, ...(settings.magnitude ? { magnitude: true } : {}) }) : varGrad(inner, model, image, options);
  }
  return single(m.name)(model, image, settings);
}

/** A method's display name, e.g. `smoothgrad:ig`. */
export function methodLabel(method: ParsedMethod): string {
  return method.inner && (method.name === 'smoothgrad' || method.name === 'vargrad') ? `${method.name}:${method.inner}` : method.name;
}
