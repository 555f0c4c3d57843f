/**
 * Signatures as the serving layer sees them, and their two wire forms: the `tensorflow.SignatureDef`
 * message (gRPC metadata, packed in a SignatureDefMap) and its proto3 JSON (REST metadata, exactly
 * like `../shared/testdata/savedmodels/expected/*.json`).
 *
 * @example
 * const sig: SignatureSpec = {
 *   methodName: 'tensorflow/serving/predict',
 *   inputs: { x: { name: 'x:0', dtype: 'DT_FLOAT', shape: [-1, 1] } },
 *   outputs: { y: { name: 'y:0', dtype: 'DT_FLOAT', shape: [-1, 1] } },
 * };
 * signatureDefJson(sig).inputs.x.tensor_shape; // { dim: [{size:'-1',name:''},{size:'1',name:''}], unknown_rank: false }
 */
import { LensError } from '../core/errors.js';
import { baseDataType, dataTypeName, type HostTensor } from '../tensor/index.js';

export const PREDICT_METHOD = 'tensorflow/serving/predict';
export const CLASSIFY_METHOD = 'tensorflow/serving/classify';
export const REGRESS_METHOD = 'tensorflow/serving/regress';
export const DEFAULT_SIGNATURE = 'serving_default';

/** One input or output of a signature. */
export interface TensorSpec {
  /** Graph tensor name ("x:0"); empty for non-dense encodings. */
  name: string;
  /** TensorFlow dtype name, e.g. 'DT_FLOAT' (`_REF` variants as written in old exports). */
  dtype: string;
  /** Dimensions with -1 for unknown sizes; null when the rank itself is unknown. */
  shape: number[] | null;
}

export interface SignatureSpec {
  methodName: string;
  inputs: Record<string, TensorSpec>;
  outputs: Record<string, TensorSpec>;
  /** Values used for inputs a request leaves out (SignatureDef.defaults, TF 2.x). */
  defaults?: Record<string, HostTensor>;
}

/** proto3 JSON of a TensorInfo, with the field names TF Serving prints. */
export interface TensorInfoJson {
  dtype: string;
  tensor_shape: { dim: { size: string; name: string }[]; unknown_rank: boolean };
  name: string;
}

export interface SignatureDefJson {
  inputs: Record<string, TensorInfoJson>;
  outputs: Record<string, TensorInfoJson>;
  method_name: string;
  defaults?: Record<string, unknown>;
}

function tensorInfoJson(spec: TensorSpec): TensorInfoJson {
  return {
    dtype: dataTypeName(spec.dtype),
    tensor_shape:
      spec.shape === null
        ? { dim: [], unknown_rank: true }
        : { dim: spec.shape.map((d) => ({ size: String(d), name: '' })), unknown_rank: false },
    name: spec.name,
  };
}

/** The REST (proto3 JSON) form of a signature, as in TF Serving's metadata replies. */
export function signatureDefJson(sig: SignatureSpec): SignatureDefJson {
  const map = (m: Record<string, TensorSpec>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, tensorInfoJson(v)]));
  return { inputs: map(sig.inputs), outputs: map(sig.outputs), method_name: sig.methodName, defaults: {} };
}

/** A `tensorflow.SignatureDef` message object (protobufjs form) of a signature. */
export function signatureDefMessage(sig: SignatureSpec, encodeDefault: (t: HostTensor) => unknown): Record<string, unknown> {
  const info = (spec: TensorSpec) => ({
    name: spec.name,
    dtype: dtypeNumber(spec.dtype),
    tensor_shape: spec.shape === null ? { unknown_rank: true } : { dim: spec.shape.map((size) => ({ size })) },
  });
  const map = (m: Record<string, TensorSpec>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, info(v)]));
  const defaults = Object.fromEntries(Object.entries(sig.defaults ?? {}).map(([k, t]) => [k, encodeDefault(t)]));
  return { inputs: map(sig.inputs), outputs: map(sig.outputs), method_name: sig.methodName, defaults };
}

/** The DataType number of a dtype name, keeping `_REF` (number + 100) as the message carries it. */
export function dtypeNumber(name: string): number {
  const base = baseDataType(name);
  return name.toUpperCase().endsWith('_REF') ? base + 100 : base;
}

interface TensorInfoMessage {
  name?: string;
  dtype?: number;
  tensor_shape?: { dim?: { size?: number }[]; unknown_rank?: boolean } | null;
}

/** A signature from a decoded `tensorflow.SignatureDef` message. */
export function signatureFromMessage(msg: {
  inputs?: Record<string, TensorInfoMessage>;
  outputs?: Record<string, TensorInfoMessage>;
  method_name?: string;
}): SignatureSpec {
  const spec = (t: TensorInfoMessage): TensorSpec => ({
    name: t.name ?? '',
    dtype: dataTypeName(t.dtype ?? 0),
    // No recorded shape (old exports) means nothing is known, like an unknown rank.
    shape: !t.tensor_shape || t.tensor_shape.unknown_rank ? null : (t.tensor_shape.dim ?? []).map((d) => Number(d.size ?? 0)),
  });
  const map = (m: Record<string, TensorInfoMessage> | undefined) => Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, spec(v)]));
  return { methodName: msg.method_name ?? '', inputs: map(msg.inputs), outputs: map(msg.outputs) };
}

/** A signature from its REST JSON form. */
export function signatureFromJson(json: SignatureDefJson): SignatureSpec {
  const spec = (t: TensorInfoJson): TensorSpec => ({
    name: t.name ?? '',
    dtype: t.dtype,
    shape: t.tensor_shape?.unknown_rank ? null : (t.tensor_shape?.dim ?? []).map((d) => Number(d.size)),
  });
  const map = (m: Record<string, TensorInfoJson> | undefined) => Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, spec(v)]));
  return { methodName: json.method_name ?? '', inputs: map(json.inputs), outputs: map(json.outputs) };
}

/** Checks that a name/alias map is non-empty and names something, for clear errors on bad servables. */
export function checkSignature(key: string, sig: SignatureSpec, what: string): void {
  if (typeof sig.methodName !== 'string' || !sig.inputs || !sig.outputs) {
    throw new LensError('INVALID_ARGUMENT', `${what}: signature "${key}" lacks inputs, outputs or method_name`);
  }
}
