/**
 * One error type for the whole library. `code` is stable (scripts and servers switch on it);
 * `message` names the file, node, input or flag at fault.
 *
 * @example
 * try { await loadSavedModel('/models/resnet/1'); }
 * catch (e) { if (e instanceof LensError && e.code === 'SAVEDMODEL_NOT_FOUND') ... }
 */
export type LensErrorCode =
  // generic
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'UNSUPPORTED'
  | 'INTERNAL'
  // backend
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_FAILED'
  // protobuf / tensors
  | 'PROTO_DECODE'
  | 'TENSOR_INVALID'
  | 'DTYPE_UNSUPPORTED'
  | 'SHAPE_MISMATCH'
  // SavedModel and TensorBundle
  | 'SAVEDMODEL_NOT_FOUND'
  | 'SAVEDMODEL_CORRUPT'
  | 'SAVEDMODEL_UNSUPPORTED'
  | 'BUNDLE_CORRUPT'
  | 'UNKNOWN_TAGS'
  | 'UNKNOWN_SIGNATURE'
  | 'UNKNOWN_TENSOR'
  | 'UNSUPPORTED_OP'
  // model import / export
  | 'MODEL_CORRUPT'
  | 'MODEL_UNSUPPORTED'
  | 'UNKNOWN_MODEL'
  | 'DOWNLOAD_FAILED'
  | 'CHECKSUM_MISMATCH'
  // images
  | 'IMAGE_DECODE'
  | 'IMAGE_FETCH'
  | 'IMAGE_TOO_LARGE'
  // serving
  | 'SERVING_ERROR'
  | 'MESSAGE_TOO_LARGE'
  | 'MODEL_MISMATCH'
  // attribution
  | 'ATTRIBUTION_FAILED'
  // files written by the library (PNG, .npy, JSON)
  | 'WRITE_FAILED'
  // batch work stopped by a signal before it finished (rerun to resume)
  | 'INTERRUPTED';

export class LensError extends Error {
  override readonly name = 'LensError';
  constructor(
    readonly code: LensErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `e` is a LensError, optionally with the given code. */
export function isLensError(e: unknown, code?: LensErrorCode): e is LensError {
  return e instanceof LensError && (code === undefined || e.code === code);
}

/** Message of any thrown value, for places that must report rather than rethrow. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
