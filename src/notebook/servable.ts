/**
 * Validating an exported servable before it goes to TF Serving, as the tutorial's
 * servable-validation notebook did: load the SavedModel with the project's own loader, check the
 * JPEG-bytes signature's contract (dtypes and shapes), run it on sample images and check what comes
 * back (one row per image, probabilities that form a distribution, `class_ids` equal to the top-k of
 * `probabilities`, a batch answering like single requests, bytes that are not an image refused),
 * and compare with the model that was exported, through both the JPEG and the float signatures.
 *
 * @example
 * const v = await validateServable('out/servable/1', { images: ['a.jpg', 'b.jpg'], reference: model });
 * showTable(v.checks.map(({ check, ok, detail }) => ({ check, ok, detail })));
 * assert.ok(v.ok);
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { forwardRows, toProbabilities } from '../attribution/engine.js';
import { LensError, errorMessage } from '../core/errors.js';
import { decodePixels } from '../image/index.js';
import { topK, type ImageModel } from '../core/model.js';
import { loadSavedModel, type LoadedSavedModel } from '../engines/tfjs/savedmodel.js';
import type { SignatureInfo } from '../savedmodel/savedmodel.js';
import { concatFloat32, type HostTensor } from '../tensor/index.js';

/** One check: what was checked, whether it held, and the numbers or error behind it. */
export interface ServableCheck {
  check: string;
  ok: boolean;
  detail: string;
}

/** One sample image's answer from the JPEG signature. */
export interface ServablePrediction {
  image: string;
  top: { index: number; label?: string; probability: number }[];
}

export interface ServableValidation {
  dir: string;
  /** Every check held. */
  ok: boolean;
  checks: ServableCheck[];
  signatures: { name: string; inputs: string[]; outputs: string[] }[];
  predictions: ServablePrediction[];
}

export interface ValidateServableOptions {
  /** Image files (JPEG, PNG...) sent as encoded bytes, as clients of the servable do. */
  images: readonly string[];
  /** The model that was exported: its answers on the decoded images are compared with the servable's. */
  reference?: ImageModel;
  /** Class names for the predictions (default: the reference model's). */
  labels?: readonly string[];
  /** Signature taking encoded images. Default 'serving_default'. */
  signature?: string;
  /** Signature taking float pixels, compared with the reference when present. Default 'predict_pixels'. */
  pixelsSignature?: string;
  /** Largest accepted probability difference from the reference through the JPEG signature. Default 1e-3. */
  tolerance?: number;
}

const FLOAT_TOLERANCE = 1e-5;

function describe(s: SignatureInfo): { name: string; inputs: string[]; outputs: string[] } {
  const t = (x: SignatureInfo['inputs'][number]) => `${x.alias}: ${x.dataType} [${x.shape?.join(',') ?? '?'}]`;
  return { name: s.name, inputs: s.inputs.map(t), outputs: s.outputs.map(t) };
}

function floatRows(t: HostTensor | undefined, what: string): Float32Array[] {
  if (!t || t.dtype !== 'float32' || t.shape.length !== 2) throw new LensError('TENSOR_INVALID', `${what} is not a float32 matrix`);
  const [n, c] = t.shape as [number, number];
  return Array.from({ length: n }, (_, i) => t.values.subarray(i * c, (i + 1) * c));
}

function intRows(t: HostTensor | undefined, what: string): number[][] {
  if (!t || (t.dtype !== 'int64' && t.dtype !== 'int32') || t.shape.length !== 2) throw new LensError('TENSOR_INVALID', `${what} is not an integer matrix`);
  const [n, k] = t.shape as [number, number];
  const values = Array.from(t.values as ArrayLike<number | bigint>, Number);
  return Array.from({ length: n }, (_, i) => values.slice(i * k, (i + 1) * k));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return a.length === b.length ? m : Infinity;
}

const argmax = (a: ArrayLike<number>) => topK(a, 1)[0]!.index;

/**
 * Runs the checks on the SavedModel version folder `versionDir` (e.g. `out/servable/1`). A check
 * that fails is reported, not thrown; the SavedModel failing to load is the one fatal failure
 * (reported as the only check).
 *
 * @example
 * const exported = await exportSavedModel(model, 'out/servable', { version: 1 });
 * const v = await validateServable(exported.dir, { images: ['cat.jpg'], reference: model });
 * if (!v.ok) console.table(v.checks.filter((c) => !c.ok));
 */
export async function validateServable(versionDir: string, options: ValidateServableOptions): Promise<ServableValidation> {
  if (options.images.length === 0) throw new LensError('INVALID_ARGUMENT', 'servable validation needs at least one sample image');
  const signatureName = options.signature ?? 'serving_default';
  const pixelsSignature = options.pixelsSignature ?? 'predict_pixels';
  const tolerance = options.tolerance ?? 1e-3;
  const labels = options.labels ?? options.reference?.labels;
  const checks: ServableCheck[] = [];
  const add = (check: string, ok: boolean, detail: string) => checks.push({ check, ok, detail });
  const attempt = async (check: string, run: () => Promise<string>) => {
    try {
      add(check, true, await run());
    } catch (e) {
      add(check, false, errorMessage(e));
    }
  };

  let model: LoadedSavedModel;
  try {
    model = await loadSavedModel(versionDir);
  } catch (e) {
    add('SavedModel loads (tag serve)', false, errorMessage(e));
    return { dir: versionDir, ok: false, checks, signatures: [], predictions: [] };
  }
  const predictions: ServablePrediction[] = [];
  try {
    add('SavedModel loads (tag serve)', true, `TensorFlow ${model.metaGraph.tensorflowVersion || '?'}, signatures: ${model.signatures.map((s) => s.name).join(', ')}`);
    const sig = model.signatures.find((s) => s.name === signatureName);
    if (!sig) {
      add(`signature ${signatureName} exists`, false, `signatures: ${model.signatures.map((s) => s.name).join(', ')}`);
      return { dir: versionDir, ok: false, checks, signatures: model.signatures.map(describe), predictions };
    }
    const input = sig.inputs[0];
    const jpegInput = sig.inputs.length === 1 && input?.dtype === 'string' && input.shape?.length === 1;
    add(`${signatureName} takes a batch of encoded images`, jpegInput, input ? `${input.alias}: ${input.dataType} [${input.shape?.join(',') ?? '?'}]` : 'no input');
    const classesOut = sig.outputs.find((o) => o.alias === 'class_ids');
    const probsOut = sig.outputs.find((o) => o.alias === 'probabilities');
    add(
      `${signatureName} returns class_ids (int64) and probabilities (float)`,
      classesOut?.dtype === 'int64' && probsOut?.dtype === 'float32',
      sig.outputs.map((o) => `${o.alias}: ${o.dataType} [${o.shape?.join(',') ?? '?'}]`).join(', '),
    );
    if (!jpegInput || !input) return { dir: versionDir, ok: false, checks, signatures: model.signatures.map(describe), predictions };

    const bytes = await Promise.all(options.images.map((p) => readFile(p)));
    const batch = (list: readonly Uint8Array[]): Record<string, HostTensor> => ({ [input.alias]: { dtype: 'string', shape: [list.length], values: list.map((b) => new Uint8Array(b)) } });
    const n = bytes.length;
    let probs: Float32Array[] = [];
    let classes: number[][] = [];
    await attempt(`decodes and classifies ${n} sample image${n === 1 ? '' : 's'} in one batch`, async () => {
      const out = await model.predict(batch(bytes), { signature: signatureName });
      probs = floatRows(out.probabilities, 'probabilities');
      classes = intRows(out.class_ids, 'class_ids');
      if (probs.length !== n || classes.length !== n) throw new LensError('SHAPE_MISMATCH', `got ${probs.length} probability rows and ${classes.length} class rows for ${n} images`);
      return `probabilities [${out.probabilities!.shape.join(',')}], class_ids [${out.class_ids!.shape.join(',')}]`;
    });
    if (probs.length === n) {
      let lo = Infinity;
      let hi = -Infinity;
      let worstSum = 0;
      for (const row of probs) {
        let sum = 0;
        for (const v of row) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          sum += v;
        }
        worstSum = Math.max(worstSum, Math.abs(sum - 1));
      }
      add('probabilities lie in [0, 1] and each row sums to 1', lo >= 0 && hi <= 1 && worstSum <= 1e-4, `min ${lo.toPrecision(3)}, max ${hi.toPrecision(3)}, largest |sum - 1| ${worstSum.toExponential(1)}`);
      const consistent = classes.every((row, i) => {
        const p = probs[i]!;
        const sorted = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]!);
        return row.every((c, j) => c === sorted[j] || Math.abs(p[c]! - p[sorted[j]!]!) <= 1e-7);
      });
      add('class_ids are the top-k of probabilities, best first', consistent, `k = ${classes[0]?.length ?? 0}`);
      probs.forEach((row, i) => {
        const top = classes[i]!.map((index) => ({ index, ...(labels?.[index] !== undefined ? { label: labels[index] } : {}), probability: row[index]! }));
        predictions.push({ image: basename(options.images[i]!), top });
      });
      await attempt('a single request answers like its row of the batch', async () => {
        const one = await model.predict(batch([bytes[0]!]), { signature: signatureName });
        const diff = maxAbsDiff(floatRows(one.probabilities, 'probabilities')[0]!, probs[0]!);
        if (!(diff <= FLOAT_TOLERANCE)) throw new LensError('MODEL_MISMATCH', `largest probability difference ${diff.toExponential(2)} (tolerance ${FLOAT_TOLERANCE})`);
        return `largest probability difference ${diff.toExponential(1)}`;
      });
    }
    add(
      'bytes that are not an image are refused',
      await model.predict(batch([new TextEncoder().encode('not an image')]), { signature: signatureName }).then(
        () => false,
        () => true,
      ),
      'the request fails with an error instead of answering',
    );

    const reference = options.reference;
    if (reference && probs.length === n) {
      const [h, w, c] = reference.inputShape;
      const pixels = await Promise.all(bytes.map((b, i) => decodePixels(b, { size: [h, w], resize: 'squash', channels: c === 1 ? 1 : 3, source: options.images[i]! })));
      const refRows = (await forwardRows(reference, pixels.map((p) => p.data), 32)).map((r) => toProbabilities(r, reference.output));
      const jpegDiff = Math.max(...refRows.map((r, i) => maxAbsDiff(r, probs[i]!)));
      const sameTop = refRows.every((r, i) => argmax(r) === argmax(probs[i]!));
      add(
        `agrees with ${reference.name} on the decoded images`,
        sameTop && jpegDiff <= tolerance,
        `same top-1 on ${refRows.filter((r, i) => argmax(r) === argmax(probs[i]!)).length}/${n}, largest probability difference ${jpegDiff.toExponential(1)} (tolerance ${tolerance})`,
      );
      const floatSig = model.signatures.find((s) => s.name === pixelsSignature);
      const floatInput = floatSig?.inputs.length === 1 ? floatSig.inputs[0] : undefined;
      if (floatInput) {
        await attempt(`${pixelsSignature} (float pixels) agrees with ${reference.name}`, async () => {
          const values = concatFloat32(pixels.map((p) => p.data));
          const out = await model.predict({ [floatInput.alias]: { dtype: 'float32', shape: [n, h, w, c], values } }, { signature: pixelsSignature });
          const rows = floatRows(out.probabilities, 'probabilities');
          const diff = Math.max(...refRows.map((r, i) => maxAbsDiff(r, rows[i]!)));
          if (!(diff <= FLOAT_TOLERANCE)) throw new LensError('MODEL_MISMATCH', `largest probability difference ${diff.toExponential(2)} (tolerance ${FLOAT_TOLERANCE})`);
          return `largest probability difference ${diff.toExponential(1)} (tolerance ${FLOAT_TOLERANCE})`;
        });
      }
    }
  } finally {
    model.dispose();
  }
  return { dir: versionDir, ok: checks.every((c) => c.ok), checks, signatures: model.signatures.map(describe), predictions };
}
