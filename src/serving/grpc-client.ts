/**
 * The gRPC transport of {@link ServingClient}: PredictionService and ModelService calls with
 * @grpc/grpc-js, messages encoded and decoded with the protobufjs types of protos/.
 */
import * as grpc from '@grpc/grpc-js';
import { LensError } from '../core/errors.js';
import { decodeMessage, protoType } from '../proto/index.js';
import { signatureDefJson as signatureDefMessageJson } from '../savedmodel/metadata.js';
import type { SignatureDefMessage } from '../savedmodel/savedmodel.js';
import { decodeTensorProto, elementCount, encodeTensorProto, shapeFromProto, viewBytesAs, type HostTensor, type TensorProtoMessage } from '../tensor/index.js';
import {
  withRetries,
  type CallOptions,
  type ClassifyResult,
  type ClientOptions,
  type ExampleFeatures,
  type ExamplesCall,
  type ModelMetadata,
  type ModelRef,
  type ModelVersionStatusJson,
  type MultiInferenceCall,
  type MultiInferenceResult,
  type PredictCall,
  type PredictResult,
  type RegressResult,
  type ServedModelSpec,
  type ServingClient,
} from './client-api.js';
import { encodeRaw, grpcChannel, grpcMetadata, grpcTarget, MAX_MESSAGE_BYTES, MODEL_SERVICE, PREDICTION_SERVICE, SIGNATURE_DEF_MAP_URL, stateName } from './grpc.js';
import type { ModelSpecMessage } from './core.js';
import type { ModelSource } from './manager.js';
import { CLASSIFY_METHOD, REGRESS_METHOD, signatureFromMessage, type SignatureDefJson } from './signature.js';
import { noRouteProblem, reachProblem } from './reach.js';
import { ServingError, statusName } from './status.js';

function specOf(m: ModelSpecMessage | null | undefined): ServedModelSpec {
  return { name: m?.name ?? '', version: m?.version ? Number(m.version.value ?? 0) : null, signature: m?.signature_name ?? '' };
}

function modelSpec(ref: Partial<ModelRef> & { model: string }): Record<string, unknown> {
  if (ref.version !== undefined && ref.label !== undefined) {
    throw new LensError('INVALID_ARGUMENT', `give a version (${ref.version}) or a label (${ref.label}), not both`);
  }
  return {
    name: ref.model,
    ...(ref.version !== undefined ? { version: { value: ref.version } } : {}),
    ...(ref.label !== undefined ? { version_label: ref.label } : {}),
    signature_name: ref.signature ?? '',
  };
}

function inputMessage(call: { examples: ExamplesCall['examples']; context?: ExamplesCall['context'] }): Record<string, unknown> {
  const examples = call.examples.map(exampleMessage);
  return call.context ? { example_list_with_context: { examples, context: exampleMessage(call.context) } } : { example_list: { examples } };
}

interface ClassificationResultMessage {
  classifications?: { classes?: { label?: string; score?: number }[] }[];
}

function classifications(r: ClassificationResultMessage | null | undefined): { label: string; score: number }[][] {
  return (r?.classifications ?? []).map((c) => (c.classes ?? []).map((k) => ({ label: k.label ?? '', score: k.score ?? 0 })));
}

function regressions(r: { regressions?: { value?: number }[] } | null | undefined): number[] {
  return (r?.regressions ?? []).map((x) => x.value ?? 0);
}

type PackedTensorMessage = Omit<TensorProtoMessage, 'float_val' | 'double_val'> & { float_val?: Uint8Array; double_val?: Uint8Array };

/**
 * Decodes a PredictResponse with float_val/double_val read as raw packed bytes (viewed as typed
 * arrays) instead of protobufjs's per-element JS arrays, which cost ~10 ms per 150k floats.
 * Proto3 writers (TF Serving's C++ protobuf included) always pack these fields; anything that does
 * not check out as packed values of the right count returns null, and the caller decodes normally.
 */
function packedPredictResponse(bytes: Uint8Array): { outputs: Record<string, HostTensor>; modelSpec: ServedModelSpec } | null {
  let msg: { outputs?: Record<string, PackedTensorMessage>; model_spec?: ModelSpecMessage };
  try {
    msg = decodeMessage('serving_lens.wire.PackedPredictResponse', bytes, 'PredictResponse');
  } catch {
    return null;
  }
  const outputs: Record<string, HostTensor> = {};
  for (const [alias, t] of Object.entries(msg.outputs ?? {})) {
    const what = `output "${alias}"`;
    const packed = t.float_val?.length ? t.float_val : t.double_val?.length ? t.double_val : null;
    if (!packed || t.tensor_content?.length) {
      outputs[alias] = decodeTensorProto({ ...t, float_val: [], double_val: [] }, what);
      continue;
    }
    const dtype = t.float_val?.length ? 'float32' : 'float64';
    if (t.dtype !== (dtype === 'float32' ? DT_FLOAT : DT_DOUBLE) || packed.byteLength % (dtype === 'float32' ? 4 : 8) !== 0) return null;
    let shape: number[];
    try {
      shape = shapeFromProto(t.tensor_shape, what);
    } catch {
      return null;
    }
    const n = elementCount(shape);
    const values = viewBytesAs(dtype, packed);
    if (values.length === n) outputs[alias] = { dtype, shape, values } as HostTensor;
    else if (values.length === 1) outputs[alias] = { dtype, shape, values: (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n)).fill(values[0]!) } as HostTensor;
    else return null;
  }
  return { outputs, modelSpec: specOf(msg.model_spec) };
}

const DT_FLOAT = 1;
const DT_DOUBLE = 2;

/** A tf.Example message object from friendly features. */
function exampleMessage(features: ExampleFeatures): Record<string, unknown> {
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

export class GrpcServingClient implements ServingClient {
  readonly transport = 'grpc' as const;
  readonly target: string;
  private readonly client: grpc.Client;
  private readonly maxBytes: number;

  constructor(private readonly options: ClientOptions) {
    this.target = grpcTarget(options.target);
    this.maxBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.client = grpcChannel(options.target, options.tls, this.maxBytes, options.hostHeader);
  }

  private error(e: grpc.ServiceError, method: string): ServingError {
    const status = statusName(e.code);
    const details = e.details || e.message;
    if (status === 'RESOURCE_EXHAUSTED' && /larger than max/i.test(details)) {
      return new ServingError(
        'RESOURCE_EXHAUSTED',
        `${method}: ${details}. The message exceeds the client's limit of ${this.maxBytes} bytes: raise maxMessageBytes (gRPC max message length) or send smaller batches`,
        { code: 'MESSAGE_TOO_LARGE', cause: e },
      );
    }
    if (status === 'OK') return new ServingError('UNKNOWN', `${method}: ${details}`, { cause: e });
    const where = { transport: 'grpc' as const, target: this.target, hostHeader: this.options.hostHeader };
    const unreachable = status === 'UNAVAILABLE' ? reachProblem({ ...where, cause: details }) : undefined;
    if (unreachable) return new ServingError('UNAVAILABLE', unreachable, { cause: e });
    // grpc-js reports an HTTP 404 reply (an ingress without a route for the :authority) as UNIMPLEMENTED.
    if (status === 'UNIMPLEMENTED' && /^Received HTTP status code 404\b/.test(details)) return new ServingError('NOT_FOUND', noRouteProblem(where), { cause: e });
    return new ServingError(status, details, { cause: e });
  }

  /** One unary call with raw bytes; retried on UNAVAILABLE. */
  private async call(service: string, method: string, request: Buffer, call: CallOptions): Promise<Buffer> {
    const path = `/${service}/${method}`;
    if (request.byteLength > this.maxBytes) {
      throw new ServingError(
        'RESOURCE_EXHAUSTED',
        `${method}: Sent message larger than max (${request.byteLength} vs. ${this.maxBytes}): raise maxMessageBytes or send smaller batches`,
        { code: 'MESSAGE_TOO_LARGE' },
      );
    }
    const timeoutMs = call.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    return withRetries(this.options.retry, () => {
      const deadline = Date.now() + timeoutMs;
      return new Promise<Buffer>((resolve, reject) => {
        this.client.makeUnaryRequest<Buffer, Buffer>(
          path,
          (b) => b,
          (b) => b,
          request,
          grpcMetadata({ ...this.options.metadata, ...call.metadata }),
          { deadline },
          (err, reply) => (err ? reject(this.error(err, method)) : resolve(reply!)),
        );
      });
    });
  }

  async predict(call: PredictCall): Promise<PredictResult> {
    const inputs: Record<string, TensorProtoMessage> = {};
    for (const [alias, t] of Object.entries(call.inputs)) inputs[alias] = encodeTensorProto(t, { tensorContent: t.dtype !== 'string' });
    const request = encodeRaw('tensorflow.serving.PredictRequest', {
      model_spec: modelSpec(call),
      inputs,
      output_filter: call.outputFilter ?? [],
    });
    const reply = await this.call(PREDICTION_SERVICE, 'Predict', request, call);
    const fast = packedPredictResponse(reply);
    if (fast) return { ...fast, requestBytes: request.byteLength, responseBytes: reply.byteLength };
    const msg = decodeMessage<{ outputs?: Record<string, TensorProtoMessage>; model_spec?: ModelSpecMessage }>('tensorflow.serving.PredictResponse', reply, 'PredictResponse');
    const outputs = Object.fromEntries(Object.entries(msg.outputs ?? {}).map(([k, t]) => [k, decodeTensorProto(t, `output "${k}"`)]));
    return { outputs, modelSpec: specOf(msg.model_spec), requestBytes: request.byteLength, responseBytes: reply.byteLength };
  }

  async classify(call: ExamplesCall): Promise<ClassifyResult> {
    const request = Buffer.from(protoType('tensorflow.serving.ClassificationRequest').encode(protoType('tensorflow.serving.ClassificationRequest').fromObject({ model_spec: modelSpec(call), input: inputMessage(call) })).finish());
    const reply = await this.call(PREDICTION_SERVICE, 'Classify', request, call);
    const msg = decodeMessage<{ result?: ClassificationResultMessage; model_spec?: ModelSpecMessage }>('tensorflow.serving.ClassificationResponse', reply, 'ClassificationResponse');
    return { classifications: classifications(msg.result), modelSpec: specOf(msg.model_spec), requestBytes: request.byteLength, responseBytes: reply.byteLength };
  }

  async regress(call: ExamplesCall): Promise<RegressResult> {
    const Type = protoType('tensorflow.serving.RegressionRequest');
    const request = Buffer.from(Type.encode(Type.fromObject({ model_spec: modelSpec(call), input: inputMessage(call) })).finish());
    const reply = await this.call(PREDICTION_SERVICE, 'Regress', request, call);
    const msg = decodeMessage<{ result?: { regressions?: { value?: number }[] }; model_spec?: ModelSpecMessage }>('tensorflow.serving.RegressionResponse', reply, 'RegressionResponse');
    return { values: regressions(msg.result), modelSpec: specOf(msg.model_spec), requestBytes: request.byteLength, responseBytes: reply.byteLength };
  }

  async multiInference(call: MultiInferenceCall): Promise<MultiInferenceResult> {
    const Type = protoType('tensorflow.serving.MultiInferenceRequest');
    const tasks = call.tasks.map((t) => ({ model_spec: modelSpec(t), method_name: t.method === 'classify' ? CLASSIFY_METHOD : REGRESS_METHOD }));
    const request = Buffer.from(Type.encode(Type.fromObject({ tasks, input: inputMessage(call) })).finish());
    const reply = await this.call(PREDICTION_SERVICE, 'MultiInference', request, call);
    const msg = decodeMessage<{
      results?: { model_spec?: ModelSpecMessage; classification_result?: ClassificationResultMessage | null; regression_result?: { regressions?: { value?: number }[] } | null }[];
    }>('tensorflow.serving.MultiInferenceResponse', reply, 'MultiInferenceResponse');
    const results = (msg.results ?? []).map((r) =>
      r.classification_result
        ? { modelSpec: specOf(r.model_spec), classifications: classifications(r.classification_result) }
        : { modelSpec: specOf(r.model_spec), values: regressions(r.regression_result) },
    );
    return { results, requestBytes: request.byteLength, responseBytes: reply.byteLength };
  }

  async getModelMetadata(ref: ModelRef & CallOptions): Promise<ModelMetadata> {
    const request = encodeRaw('tensorflow.serving.GetModelMetadataRequest', { model_spec: modelSpec(ref), metadata_field: ['signature_def'] });
    const reply = await this.call(PREDICTION_SERVICE, 'GetModelMetadata', request, ref);
    const msg = decodeMessage<{ model_spec?: ModelSpecMessage; metadata?: Record<string, { type_url?: string; value?: Uint8Array }> }>(
      'tensorflow.serving.GetModelMetadataResponse',
      reply,
      'GetModelMetadataResponse',
    );
    const any = msg.metadata?.signature_def;
    if (!any || any.type_url !== SIGNATURE_DEF_MAP_URL) {
      throw new ServingError('INTERNAL', `GetModelMetadata reply has no signature_def of type ${SIGNATURE_DEF_MAP_URL} (got ${any?.type_url ?? 'none'})`);
    }
    const map = decodeMessage<{ signature_def?: Record<string, SignatureDefMessage> }>('tensorflow.serving.SignatureDefMap', any.value ?? new Uint8Array(), 'SignatureDefMap');
    const defs = map.signature_def ?? {};
    const json: Record<string, SignatureDefJson> = {};
    const signatures: ModelMetadata['signatures'] = {};
    for (const [k, def] of Object.entries(defs)) {
      json[k] = signatureDefMessageJson(def) as SignatureDefJson;
      signatures[k] = signatureFromMessage(def as Parameters<typeof signatureFromMessage>[0]);
    }
    const spec = specOf(msg.model_spec);
    return {
      model_spec: { name: spec.name, signature_name: spec.signature, version: spec.version === null ? '' : String(spec.version) },
      metadata: { signature_def: { signature_def: json } },
      signatures,
    };
  }

  async getModelStatus(ref: Omit<ModelRef, 'signature'> & CallOptions): Promise<ModelVersionStatusJson[]> {
    const spec = modelSpec({ ...ref });
    delete spec.signature_name;
    const request = encodeRaw('tensorflow.serving.GetModelStatusRequest', { model_spec: spec });
    const reply = await this.call(MODEL_SERVICE, 'GetModelStatus', request, ref);
    const msg = decodeMessage<{ model_version_status?: { version?: number; state?: number; status?: { error_code?: number; error_message?: string } | null }[] }>(
      'tensorflow.serving.GetModelStatusResponse',
      reply,
      'GetModelStatusResponse',
    );
    return (msg.model_version_status ?? []).map((v) => ({
      version: String(v.version ?? 0),
      state: stateName(v.state ?? 0),
      status: { error_code: statusName(v.status?.error_code ?? 0), error_message: v.status?.error_message ?? '' },
    }));
  }

  async reloadConfig(models: ModelSource[], call: CallOptions = {}): Promise<void> {
    const config = {
      model_config_list: {
        config: models.map((m) => ({
          name: m.name,
          base_path: m.basePath,
          model_platform: 'tensorflow',
          ...(m.policy
            ? {
                model_version_policy:
                  'all' in m.policy ? { all: {} } : 'specific' in m.policy ? { specific: { versions: m.policy.specific } } : { latest: { num_versions: m.policy.latest } },
              }
            : {}),
          version_labels: m.labels ?? {},
        })),
      },
    };
    const Type = protoType('tensorflow.serving.ReloadConfigRequest');
    const request = Buffer.from(Type.encode(Type.fromObject({ config })).finish());
    const reply = await this.call(MODEL_SERVICE, 'HandleReloadConfigRequest', request, call);
    const msg = decodeMessage<{ status?: { error_code?: number; error_message?: string } | null }>('tensorflow.serving.ReloadConfigResponse', reply, 'ReloadConfigResponse');
    const code = statusName(msg.status?.error_code ?? 0);
    if (code !== 'OK') throw new ServingError(code, msg.status?.error_message ?? '');
  }

  close(): void {
    this.client.close();
  }
}
