/**
 * TensorFlow Serving's error model: canonical status codes (tensorflow.error.Code, the same numbers
 * as gRPC), their HTTP mapping on the REST API, and {@link ServingError}, the LensError that carries
 * one. Client and server both speak in ServingErrors, so a caller switches on `status` whichever
 * transport it used.
 *
 * @example
 * try { await client.predict({ model: 'resnet', inputs }); }
 * catch (e) { if (e instanceof ServingError && e.status === 'NOT_FOUND') ... }
 */
import { LensError, type LensErrorCode } from '../core/errors.js';

/** Canonical status code names, indexed by their number. */
export const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export type StatusName = (typeof STATUS_NAMES)[number];

/** HTTP status of each canonical code on TF Serving's REST API (others answer 500). */
const HTTP_OF: Partial<Record<StatusName, number>> = {
  OK: 200,
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  OUT_OF_RANGE: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  ABORTED: 409,
  PERMISSION_DENIED: 403,
  UNAUTHENTICATED: 401,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

/** The number of a status name (= gRPC status code). */
export function statusNumber(status: StatusName): number {
  return STATUS_NAMES.indexOf(status);
}

/** The name of a status number; unknown numbers are UNKNOWN. */
export function statusName(code: number): StatusName {
  return STATUS_NAMES[code] ?? 'UNKNOWN';
}

/** The HTTP status TF Serving's REST API answers for a canonical code. */
export function httpStatusOf(status: StatusName): number {
  return HTTP_OF[status] ?? 500;
}

/** The canonical code a REST client reads from an HTTP status (the inverse of {@link httpStatusOf}). */
export function statusOfHttp(http: number): StatusName {
  if (http >= 200 && http < 300) return 'OK';
  if (http === 413) return 'RESOURCE_EXHAUSTED';
  for (const name of STATUS_NAMES) if (name !== 'FAILED_PRECONDITION' && name !== 'OUT_OF_RANGE' && name !== 'ABORTED' && HTTP_OF[name] === http) return name;
  return http >= 500 ? 'INTERNAL' : 'UNKNOWN';
}

/** gRPC status messages longer than this are cut, as the real server does. */
export const GRPC_MESSAGE_LIMIT = 1024;

const LINE_BREAKING = /[\u0000-\u001f\u007f\u0085\u2028\u2029]/g;
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
/** TensorFlow's node context after a kernel message, which TF Serving sends as it is (see engines/tfjs/run-error.ts). */
const TF_NODE_CONTEXT = /(\n\t \[\[\{\{node [^\n{}]*\}\}\]\])/;

/**
 * The message as the real server puts it on the gRPC wire, at most 1024 characters, then
 * "...TRUNCATED"; and on one line but for TensorFlow's own `\n\t [[{{node NAME}}]]` suffix:
 * control characters and line separators that request values quoted in it carry (a model name,
 * input alias or label with a newline) are escaped as in JSON.
 *
 * @example
 * truncateForGrpc('No signature was found with the name: a\nb'); // 'No signature was found with the name: a\\nb'
 */
export function truncateForGrpc(message: string): string {
  const escape = (part: string) => part.replace(LINE_BREAKING, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  // split() with a capturing group puts the node contexts at the odd indexes.
  const line = message
    .split(TF_NODE_CONTEXT)
    .map((part, i) => (i % 2 ? part : escape(part)))
    .join('');
  return line.length > GRPC_MESSAGE_LIMIT ? `${line.slice(0, GRPC_MESSAGE_LIMIT)}...TRUNCATED` : line;
}

/**
 * An error with a canonical serving status. `message` is exactly what the server sent (or would
 * send); `httpStatus` is the REST status it maps to.
 *
 * @example
 * throw new ServingError('NOT_FOUND', 'Servable not found for request: Latest(resnet)');
 */
export class ServingError extends LensError {
  constructor(
    readonly status: Exclude<StatusName, 'OK'>,
    message: string,
    options?: { cause?: unknown; code?: LensErrorCode },
  ) {
    super(options?.code ?? 'SERVING_ERROR', message, options);
  }

  /** The gRPC status code number. */
  get grpcCode(): number {
    return statusNumber(this.status);
  }

  /** The HTTP status of the REST API. */
  get httpStatus(): number {
    return httpStatusOf(this.status);
  }
}

/** True when `e` is a ServingError, optionally with the given status. */
export function isServingError(e: unknown, status?: StatusName): e is ServingError {
  return e instanceof ServingError && (status === undefined || e.status === status);
}

/** LensError codes that describe a bad request rather than a server fault. */
const CLIENT_FAULTS = new Set<LensErrorCode>([
  'INVALID_ARGUMENT',
  'PROTO_DECODE',
  'TENSOR_INVALID',
  'DTYPE_UNSUPPORTED',
  'SHAPE_MISMATCH',
  'IMAGE_DECODE',
  'IMAGE_TOO_LARGE',
]);

/**
 * Any thrown value as a ServingError: ServingErrors pass through, request-shaped LensErrors
 * (bad tensors, dtypes, shapes) become INVALID_ARGUMENT, a missing thing (or SavedModel) NOT_FOUND, an op the runtime
 * lacks UNIMPLEMENTED, anything else INTERNAL with its message.
 */
export function toServingError(e: unknown): ServingError {
  if (e instanceof ServingError) return e;
  if (e instanceof LensError) {
    if (CLIENT_FAULTS.has(e.code)) return new ServingError('INVALID_ARGUMENT', e.message, { cause: e });
    // A version folder without a SavedModel is NOT_FOUND, as TF Serving's loader reports it.
    if (e.code === 'NOT_FOUND' || e.code === 'SAVEDMODEL_NOT_FOUND') return new ServingError('NOT_FOUND', e.message, { cause: e });
    if (e.code === 'UNSUPPORTED_OP' || e.code === 'UNSUPPORTED') return new ServingError('UNIMPLEMENTED', e.message, { cause: e });
    return new ServingError('INTERNAL', e.message, { cause: e });
  }
  return new ServingError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}
