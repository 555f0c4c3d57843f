// The layer order of src/, written down once: dependency-cruiser's rules below, the import-graph
// test (test/architecture.test.ts) and docs/architecture.md's table and diagram
// (scripts/architecture-docs.ts) are all generated from LAYERS.
//
//   npx depcruise src studio/src          # every import that breaks the order, and every circle
//
// A folder may import from folders in lower rows, from its own folder, and from a folder of its
// own row only where `sameRow` lists it; never upward, and no file-level circles (type-only
// imports and dynamic import() count too).

/** @type {readonly import('./.dependency-cruiser.d.mts').Layer[]} */
export const LAYERS = [
  { folders: ['core'], owns: 'errors, the ImageModel contract (core/model.ts), preprocessing, seeded random numbers; imports nothing of the project' },
  {
    folders: ['fs', 'proto', 'tensor', 'image'],
    owns: 'utilities: atomic files, protobuf loading, TensorProto/host tensors, image decode/encode',
    // TensorProto <-> typed arrays needs the loaded TensorProto type.
    sameRow: { tensor: ['proto'] },
  },
  { folders: ['savedmodel'], owns: 'reading SavedModel protos, bundles, metadata' },
  { folders: ['convert'], owns: 'model files -> tfjs graphs/LayersModels: keras, tflite, graph (SavedModel graph -> tfjs), checkpoint, savedmodel.ts' },
  { folders: ['graph'], owns: 'TensorFlow GraphDefs: builder, op-defs, variables; lowering Keras layers (keras.ts), TFLite ops (tflite.ts), converted graphs (converted.ts)' },
  { folders: ['engines/tfjs', 'engines/onnx'], owns: 'tfjs: backend init, gradient kernels (one per file), SavedModel runner, image ops; onnx: TensorFlow graph -> ONNX compiler (op rules in ops/), sessions' },
  { folders: ['serving'], owns: 'TF Serving protocol: lens serve, gRPC/REST clients, profiler' },
  { folders: ['models'], owns: 'every format -> ImageModel adapter (formats/ registry), loadImageModel, engine selection (engine.ts), the gradient worker pool, zoo, remote TF Serving model' },
  { folders: ['attribution', 'export'], owns: 'methods over ImageModel; SavedModel writing (neither imports the other)' },
  { folders: ['render'], owns: 'pictures and charts' },
  { folders: ['report'], owns: 'saving explanations: maps + pictures + summaries, comparison tables, path and curve views' },
  { folders: ['batch', 'datasets', 'k8s'], owns: 'sharded resumable batch attribution; the procedural shapes dataset; Kubernetes manifests' },
  { folders: ['notebook'], owns: 'tslab display helpers, live progress, the notebook workbench' },
  { folders: ['studio'], owns: 'the browser workbench server (its web page is studio/src)' },
  { folders: ['demo'], owns: 'the end-to-end demo pipeline' },
  { folders: ['cli'], owns: 'one file per `lens` command, thin over the library' },
  { folders: ['index.ts'], owns: 'the package entry: re-exports the public API' },
];

/**
 * The browser page (studio/src) shares only the wire types with the server and otherwise
 * imports preact and its own files.
 */
export const STUDIO_WEB = { from: 'studio/src', allowed: ['studio/src', 'src/studio/wire.ts', 'node_modules/preact'] };

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The path pattern of a table entry: a folder of src/ (`engines/tfjs`) or a file of src/ (`index.ts`).
 * @param {string} entry
 */
export function pathPattern(entry) {
  return entry.endsWith('.ts') ? `^src/${escape(entry)}$` : `^src/${escape(entry)}/`;
}

/**
 * The table entry a path of src/ belongs to (`src/engines/onnx/model.ts` -> `engines/onnx`),
 * or undefined for a path no row lists.
 * @param {string} path
 */
export function entryOf(path) {
  return LAYERS.flatMap((layer) => layer.folders).find((entry) => new RegExp(pathPattern(entry)).test(path));
}

/** The rule name of a table entry: `layer-order:engines/onnx`. */
const ruleName = (entry) => `layer-order:${entry}`;

/** One rule per table entry: what lies above it, and what of its own row it is not allowed (none for the top). */
function layerRules() {
  return LAYERS.flatMap((layer, row) =>
    layer.folders.flatMap((entry) => {
      const above = LAYERS.slice(row + 1).flatMap((higher) => higher.folders);
      const allowedPeers = layer.sameRow?.[entry] ?? [];
      const peers = layer.folders.filter((peer) => peer !== entry && !allowedPeers.includes(peer));
      const forbidden = [...peers, ...above];
      if (forbidden.length === 0) return [];
      return {
        name: ruleName(entry),
        severity: 'error',
        comment: `row ${row + 1} (${entry}) may import only lower rows${allowedPeers.length ? ` and ${allowedPeers.join(', ')}` : ''}`,
        from: { path: pathPattern(entry) },
        to: { path: forbidden.map(pathPattern) },
      };
    }),
  );
}

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    ...layerRules(),
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'no import circle at file level, type-only imports included',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-imports-outside',
      severity: 'error',
      comment: 'the library stands alone: no imports of tests, benchmarks, scripts or the studio page',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts|studio)/' },
    },
    {
      name: 'studio-web-imports',
      severity: 'error',
      comment: 'the studio page bundles preact, its own files and the wire types only',
      from: { path: `^${escape(STUDIO_WEB.from)}/` },
      to: { pathNot: STUDIO_WEB.allowed.map((allowed) => `^${escape(allowed)}(/|$)`) },
    },
  ],
  options: {
    // Type-only imports are edges too: a circle through `import type` is still a circle.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
  },
};
