import type { Command } from 'commander';
import { LensError } from '../../core/errors.js';
import { integerFlag as int } from '../attribution-support.js';

interface ServeFlags {
  port: string;
  rest_api_port: string;
  host: string;
  model_name: string;
  model_base_path?: string;
  model_config_file?: string;
  enable_batching?: boolean;
  batching_parameters_file?: string;
  monitoring_config_file?: string;
  file_system_poll_wait_seconds: string;
  rest_api_timeout_in_ms: string;
  enable_serialization_as_tensor_content?: boolean;
  saved_model_tags: string;
  ssl_cert?: string;
  ssl_key?: string;
  json?: boolean;
  rest_api_max_body_bytes: string;
  rest_api_max_json_nodes: string;
  max_broadcast_elements: string;
  max_string_elements: string;
  max_string_bytes: string;
  rest_api_header_timeout_in_ms: string;
  rest_api_body_timeout_in_ms: string;
  rest_api_idle_timeout_in_ms: string;
  rest_api_max_connections: string;
  grpc_channel_arguments?: string;
}

/** TF Serving's --grpc_channel_arguments: "key=value,key=value", numbers where they parse as numbers. */
export function parseChannelArguments(text: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const item of text.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new LensError('INVALID_ARGUMENT', `--grpc_channel_arguments: "${item}" is not key=value`);
    const value = item.slice(eq + 1).trim();
    out[item.slice(0, eq).trim()] = value !== '' && Number.isFinite(Number(value)) ? Number(value) : value;
  }
  return out;
}

/**
 * `lens serve`: a TensorFlow Serving-compatible model server (gRPC + REST) with
 * tensorflow_model_server's flags. Runs until SIGTERM/SIGINT, then drains in-flight requests and exits 0.
 */
export function register(program: Command): void {
  program
    .command('serve')
    .description('serve SavedModels over TF Serving\'s gRPC and REST APIs (tensorflow_model_server flags)')
    .option('--port <n>', 'gRPC port', '8500')
    .option('--rest_api_port <n>', 'REST port (0 disables REST)', '8501')
    .option('--host <addr>', 'address to bind (0.0.0.0 to serve other machines)', '127.0.0.1')
    .option('--model_name <name>', 'name of the model (with --model_base_path)', 'default')
    .option('--model_base_path <dir>', 'folder of numeric version folders of one SavedModel')
    .option('--model_config_file <file>', 'text-format ModelServerConfig: several models, version policies, labels')
    .option('--enable_batching', 'batch concurrent requests')
    .option('--batching_parameters_file <file>', 'text-format BatchingParameters (max_batch_size, batch_timeout_micros, ...)')
    .option('--monitoring_config_file <file>', 'text-format MonitoringConfig (prometheus_config { enable: true })')
    .option('--file_system_poll_wait_seconds <n>', 'seconds between polls for new versions (0 = load once)', '1')
    .option('--rest_api_timeout_in_ms <n>', 'REST request timeout', '30000')
    .option('--enable_serialization_as_tensor_content', 'reply with tensor_content instead of typed value fields')
    .option('--saved_model_tags <tags>', 'comma-separated MetaGraph tags to load', 'serve')
    .option('--ssl_cert <file>', 'PEM certificate chain for gRPC TLS (with --ssl_key)')
    .option('--ssl_key <file>', 'PEM private key for gRPC TLS')
    .option('--rest_api_max_body_bytes <n>', 'largest REST request body; larger ones answer 413', String(64 * 2 ** 20))
    .option('--rest_api_max_json_nodes <n>', 'most strings, objects, lists and loose numbers in one REST body (numbers in lists are not counted)', String(2 ** 20))
    .option('--max_broadcast_elements <n>', 'most elements one *_val value (or none) may fill in a request tensor', String(4 * 2 ** 20))
    .option('--max_string_elements <n>', 'most strings in one request tensor', String(2 ** 20))
    .option('--max_string_bytes <n>', 'most bytes of strings in one request tensor', String(2 ** 30))
    .option('--rest_api_header_timeout_in_ms <n>', 'time a REST client has to send its request headers', '10000')
    .option('--rest_api_body_timeout_in_ms <n>', 'time a REST client has to send a whole request, body included', '60000')
    .option('--rest_api_idle_timeout_in_ms <n>', 'an idle keep-alive REST connection is closed after this', '30000')
    .option('--rest_api_max_connections <n>', 'REST connections beyond this many are refused', '1024')
    .option('--grpc_channel_arguments <list>', 'gRPC server arguments, key=value,... (e.g. grpc.max_concurrent_streams=64,grpc.keepalive_time_ms=30000)')
    .option('--json', 'print the startup summary as JSON')
    .action(async (flags: ServeFlags) => {
      const { readFile } = await import('node:fs/promises');
      const { startServer } = await import('../../serving/server.js');
      const { savedModelLoader } = await import('../../serving/savedmodel-servable.js');
      const bad = (m: string) => new LensError('INVALID_ARGUMENT', m);
      const port = int(flags.port, '--port', 0);
      const restPort = int(flags.rest_api_port, '--rest_api_port', 0);
      const poll = int(flags.file_system_poll_wait_seconds, '--file_system_poll_wait_seconds', 0);
      const timeout = int(flags.rest_api_timeout_in_ms, '--rest_api_timeout_in_ms', 0);
      const limits = {
        maxRestBodyBytes: int(flags.rest_api_max_body_bytes, '--rest_api_max_body_bytes', 1),
        restMaxJsonNodes: int(flags.rest_api_max_json_nodes, '--rest_api_max_json_nodes', 1),
        tensorLimits: {
          maxBroadcastElements: int(flags.max_broadcast_elements, '--max_broadcast_elements', 0),
          maxStringElements: int(flags.max_string_elements, '--max_string_elements', 0),
          maxStringBytes: int(flags.max_string_bytes, '--max_string_bytes', 0),
        },
        restConnections: {
          headersTimeoutMs: int(flags.rest_api_header_timeout_in_ms, '--rest_api_header_timeout_in_ms', 1),
          requestTimeoutMs: int(flags.rest_api_body_timeout_in_ms, '--rest_api_body_timeout_in_ms', 1),
          idleTimeoutMs: int(flags.rest_api_idle_timeout_in_ms, '--rest_api_idle_timeout_in_ms', 1),
          maxConnections: int(flags.rest_api_max_connections, '--rest_api_max_connections', 1),
        },
        ...(flags.grpc_channel_arguments ? { grpcChannelArguments: parseChannelArguments(flags.grpc_channel_arguments) } : {}),
      };
      if (flags.model_base_path && flags.model_config_file) throw bad('give --model_base_path or --model_config_file, not both');
      if (!flags.model_base_path && !flags.model_config_file) throw bad('give --model_base_path (and --model_name) or --model_config_file');
      if (flags.batching_parameters_file && !flags.enable_batching) throw bad('--batching_parameters_file needs --enable_batching');
      if (!!flags.ssl_cert !== !!flags.ssl_key) throw bad('--ssl_cert and --ssl_key go together');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const server = await startServer({
        port,
        restApiPort: restPort === 0 ? false : restPort,
        host: flags.host,
        ...(flags.model_config_file ? { modelConfigFile: flags.model_config_file } : { modelName: flags.model_name, modelBasePath: flags.model_base_path! }),
        loader: savedModelLoader({ tags: flags.saved_model_tags.split(',').map((t) => t.trim()).filter(Boolean) }),
        enableBatching: !!flags.enable_batching,
        ...(flags.batching_parameters_file ? { batchingParametersFile: flags.batching_parameters_file } : {}),
        ...(flags.monitoring_config_file ? { monitoringConfigFile: flags.monitoring_config_file } : {}),
        fileSystemPollWaitSeconds: poll,
        restApiTimeoutMs: timeout,
        ...limits,
        tensorContent: !!flags.enable_serialization_as_tensor_content,
        ...(flags.ssl_cert ? { ssl: { cert: await readFile(flags.ssl_cert), key: await readFile(flags.ssl_key!) } } : {}),
        log,
      });
      const summary = { grpcPort: server.grpcPort, restPort: server.restPort, host: server.host, models: server.models() };
      if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        const lines = [`Running gRPC ModelServer at ${server.host}:${server.grpcPort} ...`];
        if (server.restPort !== null) lines.push(`Exporting HTTP/REST API at:${server.host}:${server.restPort} ...`);
        for (const m of summary.models) {
          const labels = Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(', ');
          lines.push(`  model ${m.name}: versions ${m.available.join(', ') || '(none)'}${labels ? `; labels ${labels}` : ''}  (${m.basePath})`);
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      await new Promise<void>((resolve) => {
        // Node passes a signal listener the signal's name.
        const stop = (signal: NodeJS.Signals) => {
          log(`${signal}: draining in-flight requests and shutting down`);
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          server.close().then(resolve, (e) => {
            log(`shutdown: ${(e as Error).message}`);
            resolve();
          });
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
    });
}
