/**
 * SavedModels in pure TypeScript: reading saved_model.pb and TensorBundles (and writing bundles),
 * signature listings and TF Serving metadata, running signatures with TensorFlow.js, and
 * SavedModels as ImageModels. Graph conversion lives in src/convert/graph.
 */
export { crc32c, maskCrc, unmaskCrc } from './crc32c.js';
export { readTable, writeTable, TABLE_MAGIC, type TableEntry, type WriteTableOptions } from './table.js';
export {
  readTensorBundle,
  writeTensorBundle,
  shardPath,
  bundlePrefix,
  type TensorBundle,
  type BundleEntry,
  type BundleHeader,
  type ReadBundleOptions,
  type WriteBundleOptions,
} from './bundle.js';
export {
  readSavedModel,
  selectMetaGraph,
  findSignature,
  signatureInfo,
  opHistogram,
  SERVE_TAG,
  DEFAULT_SIGNATURE,
  type SavedModelInfo,
  type MetaGraphInfo,
  type SignatureInfo,
  type SignatureTensor,
  type MetaGraphDefMessage,
  type SignatureDefMessage,
  type TensorInfoMessage,
  type NodeDefMessage,
  type AttrValueMessage,
} from './savedmodel.js';
export { signatureDefJson, signatureDefMapJson, modelMetadataJson, type SignatureDefJson, type TensorInfoJson } from './metadata.js';
