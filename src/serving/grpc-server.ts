/**
 * The gRPC front end of the local server: PredictionService and ModelService handlers over the
 * serving core, with TF Serving's status codes and the 1024-character message cut of the real server.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeMessage } from '../proto/index.js';
import type { ClassifyRequestMessage, ModelServerConfigMessage, MultiInferenceRequestMessage, PredictRequestMessage, ServingCore } from './core.js';
import {
  encodeRaw,
  metadataResponseMessage,
  modelSpecMessage,
  MODEL_SERVICE,
  predictResponseMessage,
  PREDICTION_SERVICE,
  serviceMethods,
  statusResponseMessage,
} from './grpc.js';
import { requestServed } from './memory.js';
import { toServingError, truncateForGrpc } from './status.js';

export interface GrpcHandlerOptions {
  /** Reply with tensor_content instead of typed *_val fields (--enable_serialization_as_tensor_content). */
  tensorContent?: boolean;
  /** Called around each call so the server can drain in-flight requests on shutdown. */
  track?: <T>(work: Promise<T>) => Promise<T>;
}

type Handler = (req: Record<string, unknown>, peer: string) => Promise<{ type: string; value: object }>;

/** grpc-js implementations of both services, keyed by service name. */
export function grpcImplementations(core: ServingCore, options: GrpcHandlerOptions = {}): Record<string, grpc.UntypedServiceImplementation> {
  const tc = options.tensorContent ?? false;
  const handlers: Record<string, Handler> = {
    async Predict(req) {
      const r = await core.predict(req as PredictRequestMessage, 'GRPC');
      return predictResponseMessage(r.model_spec, r.outputs, tc);
    },
    async Classify(req) {
      const r = await core.classify(req as ClassifyRequestMessage, 'GRPC');
      return { type: 'tensorflow.serving.ClassificationResponse', value: { model_spec: modelSpecMessage(r.model_spec), result: r.result } };
    },
    async Regress(req) {
      const r = await core.regress(req as ClassifyRequestMessage, 'GRPC');
      return { type: 'tensorflow.serving.RegressionResponse', value: { model_spec: modelSpecMessage(r.model_spec), result: r.result } };
    },
    async MultiInference(req) {
      const r = await core.multiInference(req as MultiInferenceRequestMessage, 'GRPC');
      const results = r.results.map((x) => ({ ...x, model_spec: modelSpecMessage(x.model_spec) }));
      return { type: 'tensorflow.serving.MultiInferenceResponse', value: { results } };
    },
    async GetModelMetadata(req) {
      const r = await core.getModelMetadata(req as { model_spec?: null; metadata_field?: string[] }, 'GRPC');
      return { type: 'tensorflow.serving.GetModelMetadataResponse', value: metadataResponseMessage(r.model_spec, r.signatures, r.signatureDefs) };
    },
    async GetModelStatus(req) {
      const versions = await core.getModelStatus(req as { model_spec?: null }, 'GRPC');
      return { type: 'tensorflow.serving.GetModelStatusResponse', value: statusResponseMessage(versions) };
    },
    async HandleReloadConfigRequest(req, peer) {
      await core.reloadConfig((req as { config?: ModelServerConfigMessage | null }).config, 'GRPC', peer);
      return { type: 'tensorflow.serving.ReloadConfigResponse', value: { status: { error_code: 0, error_message: '' } } };
    },
  };
  const track = options.track ?? (<T>(p: Promise<T>) => p);
  const impl = (service: string): grpc.UntypedServiceImplementation => {
    const out: grpc.UntypedServiceImplementation = {};
    for (const m of serviceMethods(service)) {
      const handler = handlers[m.name];
      if (!handler) continue;
      out[m.name] = ((call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        void track(
          (async () => {
            try {
              const req = decodeMessage<Record<string, unknown>>(m.requestType, call.request, `${m.name} request`);
              const reply = await handler(req, call.getPeer());
              if (call.cancelled) return;
              callback(null, encodeRaw(reply.type, reply.value));
            } catch (e) {
              const s = toServingError(e);
              callback({ code: s.grpcCode, details: truncateForGrpc(s.message) });
            } finally {
              requestServed(call.request.length);
            }
          })(),
        );
      }) as grpc.handleUnaryCall<Buffer, Buffer>;
    }
    return out;
  };
  return { [PREDICTION_SERVICE]: impl(PREDICTION_SERVICE), [MODEL_SERVICE]: impl(MODEL_SERVICE) };
}
