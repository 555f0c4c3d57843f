/**
 * How a served model takes images, read from its metadata: which input, whether it takes float or
 * uint8 pixels or encoded images, and at what [H, W, C]. The remote ImageModel (models/remote.ts)
 * and the profiler both start here.
 */
import { LensError } from '../core/errors.js';
import { baseDataType, dataTypeOfDtype } from '../tensor/index.js';
import type { ModelRef, ServingClient } from './client-api.js';
import type { SignatureSpec, TensorSpec } from './signature.js';

/** How a remote model takes images. */
export type RemoteInputKind = 'float' | 'uint8' | 'jpeg';

export const DT_FLOAT = dataTypeOfDtype('float32');
const DT_UINT8 = dataTypeOfDtype('uint8');
export const DT_STRING = dataTypeOfDtype('string');

/**
 * The signature input or output the caller named, or a clear error listing the others.
 *
 * @example
 * signatureTensor(signature, 'outputs', 'scores', what); // ['scores', { dtype: 'DT_FLOAT', shape: [-1, 10] }]
 */
export function signatureTensor(sig: SignatureSpec, side: 'inputs' | 'outputs', wanted: string, what: string): [string, TensorSpec] {
  const spec = sig[side][wanted];
  if (!spec) throw new LensError('UNKNOWN_TENSOR', `${what} has no ${side.slice(0, -1)} "${wanted}" (${side}: ${Object.keys(sig[side]).join(', ')})`);
  return [wanted, spec];
}

function pickInput(sig: SignatureSpec, wanted: string | undefined, what: string): [string, TensorSpec] {
  if (wanted) return signatureTensor(sig, 'inputs', wanted, what);
  const entries = Object.entries(sig.inputs);
  if (entries.length === 1) return entries[0]!;
  const image = entries.find(([, s]) => s.shape?.length === 4) ?? entries.find(([k]) => /image|input|bytes/i.test(k));
  if (!image) throw new LensError('UNKNOWN_TENSOR', `${what} has several inputs (${entries.map(([k]) => k).join(', ')}): choose one with --input`);
  return image;
}

/** How a served model takes images, from its metadata. */
export interface ServedImageInput {
  ref: ModelRef;
  /** "model m (grpc://host:port) signature "s"", for messages. */
  what: string;
  signature: SignatureSpec;
  inputAlias: string;
  inputKind: RemoteInputKind;
  /** [H, W, C]; unknown only for encoded-image inputs of a model that does not say its size. */
  inputShape: readonly [number, number, number] | undefined;
}

/** [H, W, C] of a signature input shaped [N, H, W, C] with known sizes. */
function imageSize(spec: TensorSpec | undefined): [number, number, number] | undefined {
  const s = spec?.shape;
  return s && s.length === 4 && s.slice(1).every((d) => d > 0) ? [s[1]!, s[2]!, s[3]!] : undefined;
}

/**
 * The pixel size a model that decodes images in-graph resizes to, as its metadata tells it: the
 * one [N, H, W, C] pixel input among its other signatures that return the same outputs (the
 * `predict_pixels` next to the `image_bytes` signatures of `lens export`).
 */
function siblingImageSize(signatures: Record<string, SignatureSpec>, own: SignatureSpec): [number, number, number] | undefined {
  const outputs = Object.keys(own.outputs).sort().join(',');
  const sizes = new Set<string>();
  for (const sig of Object.values(signatures)) {
    if (Object.keys(sig.outputs).sort().join(',') !== outputs) continue;
    const inputs = Object.values(sig.inputs);
    const size = inputs.length === 1 && baseDataType(inputs[0]!.dtype) !== DT_STRING ? imageSize(inputs[0]) : undefined;
    if (size) sizes.add(size.join(','));
  }
  if (sizes.size !== 1) return undefined;
  return [...sizes][0]!.split(',').map(Number) as [number, number, number];
}

/**
 * Reads a served model's metadata and finds its image input: alias, whether it takes float or
 * uint8 pixels or encoded images, and [H, W, C].
 */
export async function describeImageInput(
  client: ServingClient,
  options: ModelRef & { input?: string; inputShape?: readonly [number, number, number]; timeoutMs?: number },
): Promise<ServedImageInput> {
  const ref: ModelRef = { model: options.model, ...(options.version !== undefined ? { version: options.version } : {}), ...(options.label !== undefined ? { label: options.label } : {}), ...(options.signature ? { signature: options.signature } : {}) };
  const meta = await client.getModelMetadata({ ...ref, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
  const sigName = options.signature || 'serving_default';
  const what = `model ${options.model} (${client.transport}://${client.target}) signature "${sigName}"`;
  const signature = meta.signatures[sigName];
  if (!signature) {
    throw new LensError('UNKNOWN_SIGNATURE', `${what} does not exist (signatures: ${Object.keys(meta.signatures).join(', ')})`);
  }
  const [inputAlias, inputSpec] = pickInput(signature, options.input, what);
  const dt = baseDataType(inputSpec.dtype);
  const inputKind: RemoteInputKind = dt === DT_STRING ? 'jpeg' : dt === DT_UINT8 ? 'uint8' : dt === DT_FLOAT ? 'float' : (() => {
    throw new LensError('MODEL_UNSUPPORTED', `${what}: input "${inputAlias}" is ${inputSpec.dtype}; image inputs must be DT_FLOAT, DT_UINT8 or DT_STRING (encoded images)`);
  })();
  const inputShape = options.inputShape ?? imageSize(inputSpec) ?? (inputKind === 'jpeg' ? siblingImageSize(meta.signatures, signature) : undefined);
  if (!inputShape && inputKind !== 'jpeg') {
    throw new LensError('MODEL_UNSUPPORTED', `${what}: input "${inputAlias}" has shape [${inputSpec.shape?.join(',') ?? '?'}]; give the image size with inputShape [H,W,C]`);
  }
  return { ref, what, signature, inputAlias, inputKind, inputShape };
}
