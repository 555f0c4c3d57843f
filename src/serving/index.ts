/**
 * TensorFlow Serving compatibility: a client (gRPC + REST), a local server, the profiler and a
 * remote ImageModel adapter.
 *
 * @example
 * import { startServer, createClient } from 'serving-lens';
 * const server = await startServer({ port: 0, restApiPort: 0, modelName: 'half', modelBasePath: 'models/half' });
 * const client = createClient({ target: `127.0.0.1:${server.grpcPort}` });
 */
export { startServer, type ServerOptions, type RunningServer } from './server.js';
export { createClient } from './client.js';
export {
  withRetries,
  type ClientOptions,
  type ServingClient,
  type Transport,
  type TlsOptions,
  type RetryOptions,
  type ModelRef,
  type CallOptions,
  type PredictCall,
  type PredictResult,
  type ExamplesCall,
  type ExampleFeatures,
  type FeatureValue,
  type ClassifyResult,
  type RegressResult,
  type MultiInferenceCall,
  type MultiInferenceResult,
  type ModelMetadata,
  type ModelVersionStatusJson,
  type ServedModelSpec,
  type WireSizes,
} from './client-api.js';
export { ServingError, isServingError, httpStatusOf, statusOfHttp, statusName, statusNumber, toServingError, STATUS_NAMES, type StatusName } from './status.js';
export { createServable, type Servable, type ServableSpec } from './servable.js';
export { savedModelLoader, savedModelServable, type SavedModelLoaderOptions } from './savedmodel-servable.js';
export { registerExampleOps } from './example-ops.js';
export {
  ModelManager,
  aspiredVersions,
  listVersions,
  type ModelSource,
  type VersionPolicy,
  type VersionState,
  type VersionStatus,
  type ServableLoader,
  type ServableHandle,
  type ModelManagerOptions,
} from './manager.js';
export { ServingCore } from './core.js';
export { checkHealth, watchHealth, ServerHealth, healthImplementation, HEALTH_SERVICE, type HealthStatus, type HealthClientOptions } from './health.js';
export { batchingServable, type BatchingOptions } from './batching.js';
export { ServingMetrics, DEFAULT_METRICS_PATH } from './metrics.js';
export { parseTextFormat } from './text-format.js';
export {
  parseModelConfig,
  readModelConfigFile,
  parseBatchingParameters,
  readBatchingParametersFile,
  parseMonitoringConfig,
  readMonitoringConfigFile,
} from './config-files.js';
export {
  PREDICT_METHOD,
  CLASSIFY_METHOD,
  REGRESS_METHOD,
  signatureFromJson,
  signatureFromMessage,
  type SignatureSpec,
  type TensorSpec,
} from './signature.js';
export { formatFloat, isJsonList, NumberBlock, parseServingJson, parseServingJsonAsync, type ParseJsonOptions } from './json.js';
export { describeImageInput, type ServedImageInput, type RemoteInputKind } from './image-input.js';
export { connectionOptions, hostPort, type ConnectionSettings } from './connection.js';
export { profile, profileCsv, profileTable, DEFAULT_BATCH_SIZES, type ProfileOptions, type ProfileResult, type ProfileRow, type ProfileProgress } from './profiler.js';
