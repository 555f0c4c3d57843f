/**
 * gRPC plumbing shared by the client and the server: grpc-js service definitions built from the
 * protobufjs services in protos/tensorflow_serving/apis, with raw-bytes (de)serialisers so that each
 * side encodes and decodes itself (this gives exact message sizes and proper error mapping), plus
 * builders for the reply messages whose shape both sides must agree on.
 *
 * @example
 * server.addService(serviceDefinition('tensorflow.serving.PredictionService'), handlers);
 */
import * as grpc from '@grpc/grpc-js';
import { protoRoot, protoType } from '../proto/index.js';
import type { SignatureDefMessage } from '../savedmodel/savedmodel.js';
import { bytesOf, dataTypeOfDtype, encodeTensorProto, type HostTensor } from '../tensor/index.js';
import type { TlsOptions } from './client-api.js';
import { hostOfHeader } from './reach.js';
import type { ReplyModelSpec } from './core.js';
import type { VersionStatus } from './manager.js';
import { signatureDefMessage, type SignatureSpec } from './signature.js';
import { statusNumber } from './status.js';

export const PREDICTION_SERVICE = 'tensorflow.serving.PredictionService';
export const MODEL_SERVICE = 'tensorflow.serving.ModelService';
export const SIGNATURE_DEF_MAP_URL = 'type.googleapis.com/tensorflow.serving.SignatureDefMap';

/** Servers and clients accept messages up to 2 GiB - 1, the real server's limit. */
export const MAX_MESSAGE_BYTES = 2 ** 31 - 1;

export interface MethodInfo {
  name: string;
  path: string;
  requestType: string;
  responseType: string;
  /** True for a method that replies with a stream of messages (health Watch). */
  responseStream: boolean;
}

/** The methods of a service with their message types. */
export function serviceMethods(service: string): MethodInfo[] {
  const svc = protoRoot().lookupService(service);
  return svc.methodsArray.map((m) => {
    m.resolve();
    return {
      name: m.name,
      path: `/${service}/${m.name}`,
      requestType: m.resolvedRequestType!.fullName.slice(1),
      responseType: m.resolvedResponseType!.fullName.slice(1),
      responseStream: m.responseStream === true,
    };
  });
}

const passthrough = (b: Buffer): Buffer => b;

/** A grpc-js ServiceDefinition whose handlers see and produce raw message bytes. */
export function serviceDefinition(service: string): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const m of serviceMethods(service)) {
    def[m.name] = {
      path: m.path,
      requestStream: false,
      responseStream: m.responseStream,
      requestSerialize: passthrough,
      requestDeserialize: passthrough,
      responseSerialize: passthrough,
      responseDeserialize: passthrough,
      originalName: m.name,
    };
  }
  return def as grpc.ServiceDefinition;
}

/**
 * A grpc-js channel to `target` (host:port; a grpc:// or grpcs:// prefix is dropped), plain or
 * TLS, with message limits of `maxMessageBytes` both ways. `hostHeader` becomes the `:authority`
 * of every call (what ingress gateways route by) and, with TLS, the server name checked and sent
 * as SNI unless `tls.servername` is given.
 */
export function grpcChannel(target: string, tlsOption: boolean | TlsOptions | undefined, maxMessageBytes: number, hostHeader?: string): grpc.Client {
  const tls = tlsOption === true ? {} : tlsOption || null;
  const creds = tls
    ? grpc.credentials.createSsl(tls.ca ? Buffer.from(tls.ca) : null, tls.key ? Buffer.from(tls.key) : null, tls.cert ? Buffer.from(tls.cert) : null)
    : grpc.credentials.createInsecure();
  const servername = tls ? (tls.servername ?? (hostHeader !== undefined ? hostOfHeader(hostHeader) : undefined)) : undefined;
  const authority = hostHeader ?? servername;
  const channelOptions: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    ...(servername ? { 'grpc.ssl_target_name_override': servername } : {}),
    ...(authority ? { 'grpc.default_authority': authority } : {}),
  };
  return new grpc.Client(grpcTarget(target), creds, channelOptions);
}

/** host:port of a gRPC target written with or without a grpc:// or grpcs:// scheme. */
export function grpcTarget(target: string): string {
  return target.replace(/^grpcs?:\/\//, '');
}

/** gRPC metadata from plain entries (keys lower-cased, as HTTP/2 requires). */
export function grpcMetadata(entries: Record<string, string> | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries ?? {})) md.set(k.toLowerCase(), v);
  return md;
}

/** Encodes a plain message object without a fromObject pass (fields must already be wire-typed). */
export function encodeRaw(type: string, value: object): Buffer {
  const bytes = protoType(type).encode(value as Record<string, unknown>).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A ModelSpec message of a reply. */
export function modelSpecMessage(spec: ReplyModelSpec): Record<string, unknown> {
  return {
    name: spec.name,
    version: { value: spec.version },
    ...(spec.signature_name !== undefined ? { signature_name: spec.signature_name } : {}),
  };
}

/**
 * A PredictResponse: its message type and content. With `tensorContent` false (the real server's
 * default) values go in the typed *_val fields; float32/float64 ones are written through the
 * wire-identical `serving_lens.wire.PackedPredictResponse`, straight from the typed array.
 */
export function predictResponseMessage(spec: ReplyModelSpec, outputs: Record<string, HostTensor>, tensorContent: boolean): { type: string; value: Record<string, unknown> } {
  const out: Record<string, unknown> = {};
  for (const [alias, t] of Object.entries(outputs)) {
    if (!tensorContent && (t.dtype === 'float32' || t.dtype === 'float64')) {
      out[alias] = {
        dtype: dataTypeOfDtype(t.dtype),
        tensor_shape: { dim: t.shape.map((size) => ({ size })) },
        [t.dtype === 'float32' ? 'float_val' : 'double_val']: bytesOf(t.values),
      };
    } else out[alias] = encodeTensorProto(t, { tensorContent });
  }
  return { type: 'serving_lens.wire.PackedPredictResponse', value: { model_spec: modelSpecMessage(spec), outputs: out } };
}

/** The packed SignatureDefMap of a GetModelMetadataResponse. */
export function metadataResponseMessage(
  spec: ReplyModelSpec,
  signatures: Record<string, SignatureSpec>,
  signatureDefs?: Record<string, SignatureDefMessage>,
): Record<string, unknown> {
  const encodeDefault = (t: HostTensor) => encodeTensorProto(t, { tensorContent: false });
  const map = signatureDefs ?? Object.fromEntries(Object.entries(signatures).map(([k, s]) => [k, signatureDefMessage(s, encodeDefault)]));
  const SignatureDefMap = protoType('tensorflow.serving.SignatureDefMap');
  const value = SignatureDefMap.encode(SignatureDefMap.fromObject({ signature_def: map })).finish();
  return { model_spec: modelSpecMessage(spec), metadata: { signature_def: { type_url: SIGNATURE_DEF_MAP_URL, value } } };
}

const STATE_NUMBER: Record<VersionStatus['state'], number> = { START: 10, LOADING: 20, AVAILABLE: 30, UNLOADING: 40, END: 50 };
const STATE_NAME: Record<number, VersionStatus['state'] | 'UNKNOWN'> = { 0: 'UNKNOWN', 10: 'START', 20: 'LOADING', 30: 'AVAILABLE', 40: 'UNLOADING', 50: 'END' };

/** A GetModelStatusResponse message. */
export function statusResponseMessage(versions: readonly VersionStatus[]): Record<string, unknown> {
  return {
    model_version_status: versions.map((v) => ({
      version: v.version,
      state: STATE_NUMBER[v.state],
      status: { error_code: statusNumber(v.status.code), error_message: v.status.message },
    })),
  };
}

/** The state name of a ModelVersionStatus.State number. */
export function stateName(n: number): VersionStatus['state'] | 'UNKNOWN' {
  return STATE_NAME[n] ?? 'UNKNOWN';
}
