/**
 * Like-with-like checks for a served model whose signature decodes images in-graph (DT_STRING
 * `image_bytes`, as `lens export` writes and TF Serving's ResNet tutorial serves):
 *
 * 1. serving: the same bytes (the image files' own, or lossless PNG for formats DecodeJpeg does
 *    not read) through the served signature and through the local SavedModel's own signature of
 *    the same name, decoding and resizing included; without a local SavedModel, through the
 *    local model on the pixels the served graph decodes;
 * 2. attribution: the pixel-level model explained (the local ImageModel, e.g. `predict_pixels` on
 *    onnxruntime) on the pixels the graph decodes (DecodeJpeg's decoder, then ResizeBilinear with
 *    half-pixel centers, as the exported graph does) against the full local graph.
 *
 * @example
 * const r = await checkEncodedParity({ served, local, localSavedModel: 'models/mnv2/1', images: ['parrot.jpg'] });
 * r.serving.ok && r.attribution?.ok;
 */
import * as tf from '@tensorflow/tfjs-core';
import { decodeImageBytes } from '../engines/tfjs/image-ops.js';
import { bytesForDecodeJpeg } from '../image/format.js';
import { readImageBytes } from '../image/index.js';
import type { ImageModel } from '../core/model.js';
import { loadSavedModel } from '../engines/tfjs/savedmodel.js';
import type { RemoteImageModel } from '../models/remote.js';
import { defaultBatchSize, forwardRows } from './engine.js';
import { compareScoreRows, type AgreementOptions, type AgreementReport } from './model-check.js';

export interface EncodedParityOptions extends AgreementOptions {
  /** The served model (its signature takes encoded images). */
  served: RemoteImageModel;
  /** The local pixel-level model (what attributions are computed on). */
  local: ImageModel;
  /** The local SavedModel version folder, when the local copy is one: its own signature is run on the same bytes. */
  localSavedModel?: string;
  /** Image paths or URLs. */
  images: readonly string[];
  /** Signature of the local SavedModel to run (default: the served one's name, else serving_default). */
  signature?: string;
}

export interface EncodedParityReport {
  /** Served vs local on the same bytes (or vs the local model on the decoded pixels). */
  serving: AgreementReport;
  /** The local pixel-level model vs the full local graph, on the pixels that graph decodes. */
  attribution?: AgreementReport;
}

function rowsOf(scores: tf.Tensor2D): Float32Array[] {
  const data = scores.dataSync() as Float32Array;
  const [n, k] = scores.shape;
  return Array.from({ length: n }, (_, i) => data.slice(i * k, (i + 1) * k));
}

/** The pixels an exported graph feeds its model: DecodeJpeg's decoder, then bilinear resize with half-pixel centers. */
async function graphPixels(bytes: Uint8Array, size: readonly [number, number, number]): Promise<Float32Array> {
  const [h, w, c] = size;
  const img = await decodeImageBytes(bytes, c, 'DecodeJpeg');
  const resized = tf.tidy(() => {
    const x = tf.tensor3d(Float32Array.from(img.data), [img.height, img.width, img.channels]);
    return tf.image.resizeBilinear(x, [h, w], false, true);
  });
  const data = (await resized.data()) as Float32Array;
  resized.dispose();
  return data;
}

/**
 * Runs the like-with-like comparisons (see the module comment). Both reports use the same
 * tolerance and top-k.
 */
export async function checkEncodedParity(options: EncodedParityOptions): Promise<EncodedParityReport> {
  const { served, local, images } = options;
  const bytes = await Promise.all(images.map(async (src) => bytesForDecodeJpeg(await readImageBytes(src), src)));
  const servedScores = await served.forwardEncoded(bytes);
  const servedRows = rowsOf(servedScores);
  servedScores.dispose();
  const pixels = await Promise.all(bytes.map((b) => graphPixels(b, local.inputShape)));
  const localRows = await forwardRows(local, pixels, options.batchSize ?? defaultBatchSize(local.inputShape));
  const servedSide = { model: served, rows: servedRows };
  if (!options.localSavedModel) return { serving: compareScoreRows({ model: local, rows: localRows }, servedSide, images, options) };

  const graph = await loadSavedModel(options.localSavedModel);
  try {
    const signature = options.signature ?? (graph.signatures.some((s) => s.name === served.signatureName) ? served.signatureName : undefined);
    const g = await graph.graph(signature);
    const input = g.inputs[0]!.alias;
    const out = await graph.predict({ [input]: { dtype: 'string', shape: [bytes.length], values: bytes } }, { ...(signature ? { signature } : {}), outputFilter: [served.outputAlias] });
    const t = out[served.outputAlias]!;
    const k = t.shape[1]!;
    const values = t.values as Float32Array;
    const graphRows = Array.from({ length: bytes.length }, (_, i) => values.slice(i * k, (i + 1) * k));
    const graphModel = { name: `${local.name} (local SavedModel, signature ${signature ?? graph.defaultSignature})`, output: served.output, classes: k, ...(local.labels ? { labels: local.labels } : {}) };
    return {
      serving: compareScoreRows({ model: graphModel, rows: graphRows }, servedSide, images, options),
      attribution: compareScoreRows({ model: local, rows: localRows }, { model: graphModel, rows: graphRows }, images, options),
    };
  } finally {
    graph.dispose();
  }
}
