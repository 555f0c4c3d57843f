/**
 * One client for TensorFlow Serving (real or `lens serve`), two transports: gRPC (@grpc/grpc-js,
 * the protos of protos/) and REST (JSON over HTTP). Both return the same shapes and throw
 * ServingErrors with the server's status and message, so code does not care which one it uses.
 *
 * - model selection by version or version label, and signature;
 * - deadlines (`timeoutMs`), TLS, metadata/auth headers;
 * - message limits raised to 2 GiB by default (a reply still too large is a MESSAGE_TOO_LARGE error);
 * - retries with exponential backoff, only on UNAVAILABLE.
 *
 * @example
 * const client = createClient({ target: 'localhost:8500' });            // or { target: 'localhost:8501', transport: 'rest' }
 * const { outputs } = await client.predict({ model: 'half_plus_two', inputs: { x: { dtype: 'float32', shape: [3, 1], values: new Float32Array([1, 2, 5]) } } });
 * outputs.y.values; // Float32Array [2.5, 3, 4.5]
 * client.close();
 */
import { LensError } from '../core/errors.js';
import type { HostTensor } from '../tensor/index.js';
import type { SignatureDefJson, SignatureSpec } from './signature.js';
import { ServingError, type StatusName } from './status.js';
import type { ModelSource } from './manager.js';
import { GrpcServingClient } from './grpc-client.js';
import { RestServingClient } from './rest-client.js';
import { isHostHeader } from './reach.js';

export type Transport = 'grpc' | 'rest';

export interface TlsOptions {
  /** PEM CA certificate(s) to trust (default: the system roots). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for servers that require them. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify in the server certificate, when it differs from the target host. */
  servername?: string;
}

export interface RetryOptions {
  /** Retries after the first attempt (default 3; 0 disables). */
  retries?: number;
  /** First backoff in ms (default 100), doubled each retry up to maxBackoffMs (default 2000), with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ClientOptions {
  /** host:port (http(s)://host:port also accepted for REST). */
  target: string;
  transport?: Transport;
  /** Use TLS (true: system roots). */
  tls?: boolean | TlsOptions;
  /**
   * Host name the server is addressed by, when it differs from `target`: sent as the `Host`
   * header (REST) and the `:authority` (gRPC), and with TLS also as the server name (SNI and
   * certificate check) unless `tls.servername` says otherwise. Ingress gateways route by it:
   * a KServe predictor is reached at the ingress's address with the InferenceService's host name,
   * e.g. `{ target: '10.0.0.5:80', hostHeader: 'resnet.models.example.com' }`.
   */
  hostHeader?: string;
  /** Sent with every call: gRPC metadata or HTTP headers (e.g. { authorization: 'Bearer ...' }). */
  metadata?: Record<string, string>;
  /** Default deadline of a call in ms (default 30000). */
  timeoutMs?: number;
  /** Largest message sent or received (default 2 GiB - 1). */
  maxMessageBytes?: number;
  retry?: RetryOptions;
  /** REST predict body format (default 'columnar'). */
  restFormat?: 'row' | 'columnar';
}

/** Which model, version (or label) and signature a call is for. */
export interface ModelRef {
  model: string;
  version?: number;
  label?: string;
  /** Default "serving_default" (sent as empty, as real clients do). */
  signature?: string;
}

export interface CallOptions {
  /** Deadline of this call in ms. */
  timeoutMs?: number;
  /** Extra metadata / headers for this call. */
  metadata?: Record<string, string>;
}

/** Sizes of one call on the wire (request and reply bodies, without transport framing). */
export interface WireSizes {
  requestBytes: number;
  responseBytes: number;
}

export interface PredictCall extends ModelRef, CallOptions {
  inputs: Record<string, HostTensor>;
  /** Output aliases to compute (default: all). */
  outputFilter?: string[];
}

export interface ServedModelSpec {
  name: string;
  version: number | null;
  signature: string;
}

export interface PredictResult extends WireSizes {
  outputs: Record<string, HostTensor>;
  modelSpec: ServedModelSpec;
}

/** A tf.Example feature: numbers are floats unless given as { int64 }. */
export type FeatureValue =
  | number
  | number[]
  | string
  | string[]
  | Uint8Array
  | { float: number[] }
  | { int64: number[] }
  | { bytes: (string | Uint8Array)[] };

export type ExampleFeatures = Record<string, FeatureValue>;

export interface ExamplesCall extends ModelRef, CallOptions {
  examples: ExampleFeatures[];
  context?: ExampleFeatures;
}

export interface ClassifyResult extends WireSizes {
  /** Per example: the classes with scores. */
  classifications: { label: string; score: number }[][];
  modelSpec: ServedModelSpec;
}

export interface RegressResult extends WireSizes {
  values: number[];
  modelSpec: ServedModelSpec;
}

export interface MultiInferenceCall extends CallOptions {
  tasks: (ModelRef & { method: 'classify' | 'regress' })[];
  examples: ExampleFeatures[];
  context?: ExampleFeatures;
}

export interface MultiInferenceResult extends WireSizes {
  results: ({ modelSpec: ServedModelSpec } & ({ classifications: { label: string; score: number }[][] } | { values: number[] }))[];
}

/** GetModelMetadata in TF Serving's REST JSON form (same content over gRPC), plus parsed signatures. */
export interface ModelMetadata {
  model_spec: { name: string; signature_name: string; version: string };
  metadata: { signature_def: { signature_def: Record<string, SignatureDefJson> } };
  signatures: Record<string, SignatureSpec>;
}

/** GetModelStatus entry in TF Serving's REST JSON form. */
export interface ModelVersionStatusJson {
  version: string;
  state: 'UNKNOWN' | 'START' | 'LOADING' | 'AVAILABLE' | 'UNLOADING' | 'END';
  status: { error_code: StatusName; error_message: string };
}

export interface ServingClient {
  readonly transport: Transport;
  readonly target: string;
  predict(call: PredictCall): Promise<PredictResult>;
  classify(call: ExamplesCall): Promise<ClassifyResult>;
  regress(call: ExamplesCall): Promise<RegressResult>;
  multiInference(call: MultiInferenceCall): Promise<MultiInferenceResult>;
  getModelMetadata(ref: ModelRef & CallOptions): Promise<ModelMetadata>;
  getModelStatus(ref: Omit<ModelRef, 'signature'> & CallOptions): Promise<ModelVersionStatusJson[]>;
  /** Replaces the server's models (gRPC ModelService only; REST has no such route). */
  reloadConfig(models: ModelSource[], call?: CallOptions): Promise<void>;
  close(): void;
}

/**
 * A client for `options.target` over gRPC (default) or REST.
 *
 * @example
 * const rest = createClient({ target: 'localhost:8501', transport: 'rest', restFormat: 'row' });
 * // A KServe predictor behind the cluster's ingress gateway, routed by host name:
 * const kserve = createClient({ target: '10.0.0.5:80', hostHeader: 'resnet.models.example.com' });
 */
export function createClient(options: ClientOptions): ServingClient {
  if (!options.target) throw new LensError('INVALID_ARGUMENT', 'client target is empty: expected host:port');
  if (options.hostHeader !== undefined && !isHostHeader(options.hostHeader)) {
    throw new LensError('INVALID_ARGUMENT', `host header "${options.hostHeader}" is not a host name with an optional port (e.g. resnet.models.example.com)`);
  }
  return (options.transport ?? 'grpc') === 'grpc' ? new GrpcServingClient(options) : new RestServingClient(options);
}

/** Runs `attempt` and retries it with exponential backoff while it fails with UNAVAILABLE. */
export async function withRetries<T>(retry: RetryOptions | undefined, attempt: () => Promise<T>): Promise<T> {
  const retries = retry?.retries ?? 3;
  const initial = retry?.initialBackoffMs ?? 100;
  const max = retry?.maxBackoffMs ?? 2000;
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof ServingError) || e.status !== 'UNAVAILABLE' || i >= retries) throw e;
      const backoff = Math.min(max, initial * 2 ** i) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, backoff));
    }
  }
}

/** A tf.Example message object from friendly features. */
export function exampleMessage(features: ExampleFeatures): Record<string, unknown> {
  const enc = new TextEncoder();
  const bytes = (v: string | Uint8Array) => (typeof v === 'string' ? enc.encode(v) : v);
  const feature: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(features)) {
    if (typeof v === 'number') feature[name] = { float_list: { value: [v] } };
    else if (typeof v === 'string' || v instanceof Uint8Array) feature[name] = { bytes_list: { value: [bytes(v)] } };
    else if (Array.isArray(v)) {
      if ((v as unknown[]).every((x) => typeof x === 'number')) feature[name] = { float_list: { value: v } };
      else feature[name] = { bytes_list: { value: (v as string[]).map(bytes) } };
    } else if ('float' in v) feature[name] = { float_list: { value: v.float } };
    else if ('int64' in v) feature[name] = { int64_list: { value: v.int64 } };
    else feature[name] = { bytes_list: { value: v.bytes.map(bytes) } };
  }
  return { features: { feature } };
}

/** The version-or-label part of a REST path. */
export function restModelPath(ref: Omit<ModelRef, 'signature'>): string {
  if (ref.version !== undefined && ref.label !== undefined) {
    throw new LensError('INVALID_ARGUMENT', `give a version (${ref.version}) or a label (${ref.label}), not both`);
  }
  const name = encodeURIComponent(ref.model);
  if (ref.version !== undefined) return `/v1/models/${name}/versions/${ref.version}`;
  if (ref.label !== undefined) return `/v1/models/${name}/labels/${encodeURIComponent(ref.label)}`;
  return `/v1/models/${name}`;
}
