/**
 * A TensorFlow Serving model as a forward-only {@link ImageModel}: `forward(pixels)` sends the batch
 * to the server and returns the scores. Whether to send float (or uint8) pixels or encoded images
 * follows the signature's input dtype. Encoded-image inputs (DT_STRING, such as the ResNet
 * tutorial's "image_bytes") get PNGs, which TensorFlow's DecodeJpeg reads too: lossless, so the
 * served graph sees the very pixels an attribution method made; `forwardEncoded(files)` sends
 * image files' own bytes. There is no gradient, so attribution methods that only need forward
 * passes (occlusion, RISE) and `lens verify` work with it.
 *
 * The image size is the served model's: the input's shape, else (encoded images) the size of
 * another signature of the same model that takes pixels (the `predict_pixels` of `lens export`).
 *
 * @example
 * const client = createClient({ target: 'localhost:8500' });
 * const model = await createRemoteModel({ client, model: 'resnet' });
 * const scores = await model.forward(pixels);   // [N, 1001] probabilities
 */
import * as tf from '@tensorflow/tfjs-core';
import { LensError, isLensError } from '../core/errors.js';
import { encodePng } from '../image/index.js';
import { resolveLabels } from './labels.js';
import { checkPixels, type ImageModel, type ScoreKind } from '../core/model.js';
import type { HostTensor } from '../tensor/index.js';
import type { ModelRef, ServingClient } from '../serving/client-api.js';
import { baseDataType } from '../tensor/index.js';
import type { SignatureSpec, TensorSpec } from '../serving/signature.js';
import { DT_FLOAT, DT_STRING, describeImageInput, signatureTensor, type RemoteInputKind } from '../serving/image-input.js';
import { createClient } from '../serving/client.js';
import { connectionOptions, type ConnectionSettings } from '../serving/connection.js';

export interface RemoteModelOptions extends ModelRef {
  client: ServingClient;
  /** Input alias (default: the signature's only input, or its image-like one). */
  input?: string;
  /** Output alias (default: probabilities, scores, logits, or the only float output). */
  output?: string;
  /** [H, W, C] when the served model does not say (encoded-image inputs of models other than lens exports). */
  inputShape?: readonly [number, number, number];
  /** What the output holds (default: guessed from its alias, else 'probability'). */
  outputKind?: ScoreKind;
  labels?: readonly string[];
  /** Largest batch sent in one request (default 64); bigger batches are split. */
  maxBatch?: number;
  /** Deadline of each request (ms). */
  timeoutMs?: number;
}

export interface RemoteImageModel extends ImageModel {
  /**
   * Scores [N, classes] for encoded images sent as they are (encoded-image inputs only), e.g.
   * files' own bytes, so that the server decodes and resizes exactly what a client would send.
   */
  forwardEncoded(images: readonly Uint8Array[]): Promise<tf.Tensor2D>;
  readonly inputKind: RemoteInputKind;
  readonly inputAlias: string;
  readonly outputAlias: string;
  /** Key of the served signature. */
  readonly signatureName: string;
  readonly signature: SignatureSpec;
}

function pickOutput(sig: SignatureSpec, wanted: string | undefined, what: string): [string, TensorSpec] {
  if (wanted) return signatureTensor(sig, 'outputs', wanted, what);
  const entries = Object.entries(sig.outputs);
  for (const name of ['probabilities', 'scores', 'predictions', 'logits', 'output_0']) {
    const spec = sig.outputs[name];
    if (spec && baseDataType(spec.dtype) === DT_FLOAT) return [name, spec];
  }
  const floats = entries.filter(([, s]) => baseDataType(s.dtype) === DT_FLOAT);
  if (floats.length === 1) return floats[0]!;
  throw new LensError('UNKNOWN_TENSOR', `${what}: cannot tell which output holds class scores (outputs: ${entries.map(([k]) => k).join(', ')}): choose one with --output`);
}

/**
 * Connects to a served model and describes it as an ImageModel (reads its metadata once; when the
 * signature does not give the number of classes, one probe request with a black image finds it).
 */
export async function createRemoteModel(options: RemoteModelOptions): Promise<RemoteImageModel> {
  const { client } = options;
  const { ref, what, signature, inputAlias, inputKind, inputShape: described } = await describeImageInput(client, options);
  if (!described) {
    throw new LensError(
      'MODEL_UNSUPPORTED',
      `${what}: input "${inputAlias}" takes encoded images and the model does not say what size it resizes them to; give the image size with inputShape [H,W,C]`,
    );
  }
  const inputShape = described;
  const [outputAlias, outputSpec] = pickOutput(signature, options.output, what);
  const maxBatch = Math.max(1, options.maxBatch ?? 64);
  const outputKind = options.outputKind ?? (/logit/i.test(outputAlias) ? 'logit' : 'probability');

  const encode = async (data: Float32Array, n: number): Promise<HostTensor> => {
    const [h, w, c] = inputShape;
    if (inputKind === 'float') return { dtype: 'float32', shape: [n, h, w, c], values: data };
    if (inputKind === 'uint8') {
      const u = new Uint8Array(data.length);
      for (let i = 0; i < u.length; i++) u[i] = Math.max(0, Math.min(255, Math.round(data[i]!)));
      return { dtype: 'uint8', shape: [n, h, w, c], values: u };
    }
    // PNG, not JPEG: lossless (pixels are rounded to 8 bits, the most an encoded image holds).
    const per = h * w * c;
    const pngs: Uint8Array[] = [];
    for (let i = 0; i < n; i++) pngs.push(await encodePng({ data: data.subarray(i * per, (i + 1) * per), height: h, width: w, channels: c }));
    return { dtype: 'string', shape: [n], values: pngs };
  };

  const scoresOf = async (data: Float32Array, n: number): Promise<{ values: Float32Array; classes: number }> => scoresFor(await encode(data, n), n);

  // Class names the served graph returns next to the scores (`classes` by `class_ids`, as
  // `lens export` writes them) label the classes seen so far, unless labels were given.
  const names = signature.outputs.classes;
  const ids = signature.outputs.class_ids;
  const nameOutputs = !options.labels && names && ids && baseDataType(names.dtype) === DT_STRING && baseDataType(ids.dtype) !== DT_STRING ? ['classes', 'class_ids'] : [];
  const learned: string[] = [];
  const learn = (outputs: Record<string, HostTensor>) => {
    const n = outputs.classes;
    const i = outputs.class_ids;
    if (!n || !i || n.dtype !== 'string' || n.values.length !== i.values.length) return;
    const dec = new TextDecoder();
    Array.from(i.values as ArrayLike<number | bigint>, Number).forEach((index, k) => (learned[index] = dec.decode((n.values as Uint8Array[])[k])));
  };

  const scoresFor = async (input: HostTensor, n: number): Promise<{ values: Float32Array; classes: number }> => {
    const { outputs } = await client.predict({
      ...ref,
      inputs: { [inputAlias]: input },
      ...(client.transport === 'grpc' ? { outputFilter: [outputAlias, ...nameOutputs] } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    });
    if (nameOutputs.length) learn(outputs);
    const out = outputs[outputAlias];
    if (!out) throw new LensError('MODEL_MISMATCH', `${what}: the reply has no output "${outputAlias}"`);
    if (out.shape.length !== 2 || out.shape[0] !== n) {
      throw new LensError('MODEL_MISMATCH', `${what}: output "${outputAlias}" has shape [${out.shape.join(',')}], expected [${n}, classes]`);
    }
    const values = out.values instanceof Float32Array ? out.values : Float32Array.from(out.values as ArrayLike<number>);
    return { values, classes: out.shape[1]! };
  };

  let classes = outputSpec.shape && outputSpec.shape.length === 2 && outputSpec.shape[1]! > 0 ? outputSpec.shape[1]! : 0;
  if (!classes) {
    const [h, w, c] = inputShape;
    classes = (await scoresOf(new Float32Array(h * w * c), 1)).classes;
  }
  const labels = resolveLabels(classes, options.labels, `labels for ${options.model}`);

  const model: RemoteImageModel = {
    name: options.model,
    inputShape,
    classes,
    get labels() {
      return nameOutputs.length && learned.length ? learned : labels;
    },
    output: outputKind,
    preprocessing: 'raw',
    inputKind,
    inputAlias,
    outputAlias,
    signatureName: options.signature || 'serving_default',
    signature,
    async forward(pixels) {
      checkPixels(model, pixels);
      const n = pixels.shape[0];
      const data = (await pixels.data()) as Float32Array;
      const per = data.length / Math.max(1, n);
      const out = new Float32Array(n * classes);
      for (let start = 0; start < n; start += maxBatch) {
        const count = Math.min(maxBatch, n - start);
        const { values, classes: got } = await scoresOf(data.subarray(start * per, (start + count) * per), count);
        if (got !== classes) throw new LensError('MODEL_MISMATCH', `${what}: output "${outputAlias}" changed from ${classes} to ${got} classes`);
        out.set(values, start * classes);
      }
      return tf.tensor2d(out, [n, classes]);
    },
    async forwardEncoded(images) {
      if (inputKind !== 'jpeg') throw new LensError('INVALID_ARGUMENT', `${what}: input "${inputAlias}" takes ${inputKind} pixels, not encoded images`);
      const n = images.length;
      const out = new Float32Array(n * classes);
      for (let start = 0; start < n; start += maxBatch) {
        const batch = images.slice(start, start + maxBatch);
        const { values, classes: got } = await scoresFor({ dtype: 'string', shape: [batch.length], values: [...batch] }, batch.length);
        if (got !== classes) throw new LensError('MODEL_MISMATCH', `${what}: output "${outputAlias}" changed from ${classes} to ${got} classes`);
        out.set(values, start * classes);
      }
      return tf.tensor2d(out, [n, classes]);
    },
    dispose() {},
  };
  return model;
}

/**
 * Opens a served model as a forward-only ImageModel. `like` (the local copy) supplies the input
 * size when the signature does not state it, and the labels. `output` (`logit` or `probability`)
 * overrides the guess from the output's name.
 *
 * @example
 * const { model, close } = await openServedModel({ target: 'localhost:8500', model: 'resnet', connection: { transport: 'rest' } });
 */
export async function openServedModel(options: {
  target: string;
  model: string;
  /** Transport, TLS, Host header and metadata, as text (see serving/connection.ts). */
  connection: ConnectionSettings;
  version?: number;
  signature?: string;
  output?: string;
  like?: ImageModel;
}): Promise<{ model: RemoteImageModel; close(): void }> {
  if (options.output !== undefined && options.output !== 'logit' && options.output !== 'probability') {
    throw new LensError('INVALID_ARGUMENT', `--served-output must be logit or probability, got "${options.output}"`);
  }
  const client = createClient({ target: options.target, ...connectionOptions(options.connection) });
  try {
    const base = {
      client,
      model: options.model,
      ...(options.version !== undefined ? { version: options.version } : {}),
      ...(options.signature ? { signature: options.signature } : {}),
      ...(options.output ? { outputKind: options.output as 'logit' | 'probability' } : {}),
      ...(options.like?.labels ? { labels: options.like.labels } : {}),
    };
    // The served model's own input size wins; the local copy's size fills in only when the served
    // model does not say it (unknown dimensions, encoded images without a pixel signature).
    const open = async (settings: typeof base) => {
      try {
        return await createRemoteModel(settings);
      } catch (e) {
        if (!options.like || !isLensError(e, 'MODEL_UNSUPPORTED') || !/size|shape/.test(e.message)) throw e;
        return createRemoteModel({ ...settings, inputShape: options.like.inputShape });
      }
    };
    let model;
    try {
      model = await open(base);
    } catch (e) {
      // The local copy's labels name the served classes only when the counts agree; when they do
      // not, the model check that follows says so (MODEL_MISMATCH naming both class counts).
      if (!base.labels || !isLensError(e, 'MODEL_MISMATCH') || !/labels but the model scores/.test(e.message)) throw e;
      const { labels: _, ...unlabelled } = base;
      model = await open(unlabelled);
    }
    return { model, close: () => client.close() };
  } catch (e) {
    client.close();
    throw e;
  }
}
