/**
 * SavedModel versions as servables: the server's default loader. Each version folder is loaded
 * with the SavedModel loader (src/savedmodel), every signature is converted at load so the first
 * request does not pay for it (a signature that cannot be converted answers its error when asked
 * for, while the others serve), and metadata is the SavedModel's own SignatureDefs.
 *
 * @example
 * const server = await startServer({ modelBasePath: '/models/resnet', loader: savedModelLoader({ tags: ['serve'] }) });
 */
import { decodeTensorProto, type HostTensor } from '../tensor/index.js';
import { loadSavedModel, type LoadedSavedModel } from '../engines/tfjs/savedmodel.js';
import type { SignatureDefMessage } from '../savedmodel/savedmodel.js';
import { registerExampleOps } from './example-ops.js';
import { LargeRequestWorker, isLargeRequest } from './large-requests.js';
import type { ServableLoader } from './manager.js';
import type { Servable } from './servable.js';
import { signatureFromMessage, type SignatureSpec } from './signature.js';

export interface SavedModelLoaderOptions {
  /** MetaGraph tags (default ["serve"], as tensorflow_model_server --saved_model_tags). */
  tags?: readonly string[];
}

/**
 * A servable over a loaded SavedModel. Large requests run in a worker thread that gives their
 * memory back when they stop (see large-requests.ts), unless the graph assigns variables.
 */
export async function savedModelServable(model: LoadedSavedModel, options: SavedModelLoaderOptions = {}): Promise<Servable & { signatureDefs: Record<string, SignatureDefMessage> }> {
  const defs = model.metaGraph.def.signature_def ?? {};
  const signatures: Record<string, SignatureSpec> = {};
  for (const [key, def] of Object.entries(defs)) {
    const spec = signatureFromMessage(def as Parameters<typeof signatureFromMessage>[0]);
    const defaults = Object.entries(def.defaults ?? {});
    if (defaults.length) {
      spec.defaults = Object.fromEntries(defaults.map(([alias, t]) => [alias, decodeTensorProto(t, `default of input "${alias}" of signature "${key}"`)])) as Record<string, HostTensor>;
    }
    signatures[key] = spec;
  }
  // Convert what can run now; failures are reported when the signature is requested.
  for (const s of model.signatures) {
    if (s.outputs.length === 0 || s.name.startsWith('__')) continue;
    await model.graph(s.name).catch(() => undefined);
  }
  const large = new LargeRequestWorker(model.dir, options.tags ?? model.metaGraph.tags);
  // A signature that does not convert answers its error from the main thread.
  const stateful = (signature: string) => model.graph(signature).then((g) => g.converted.stateVariables.length > 0, () => true);
  return {
    signatures,
    signatureDefs: defs,
    run: async (signature, inputs, outputs) =>
      isLargeRequest(inputs) && !(await stateful(signature)) ? large.run(signature, inputs, outputs) : model.predict(inputs, { signature, outputFilter: outputs }),
    dispose: async () => {
      model.dispose();
      await large.close();
    },
  };
}

/** The loader `startServer` uses by default: one SavedModel per numeric version folder. */
export function savedModelLoader(options: SavedModelLoaderOptions = {}): ServableLoader {
  registerExampleOps();
  const tags = options.tags ?? ['serve'];
  return async (dir) => savedModelServable(await loadSavedModel(dir, { tags, lazy: true }), { tags });
}
