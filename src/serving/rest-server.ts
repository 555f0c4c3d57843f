/**
 * The REST front end of the local server (express), with TF Serving's routes, JSON formats,
 * status codes and messages:
 * - POST /v1/models/{m}[/versions/{v} | /labels/{l}]:(predict|classify|regress)
 * - GET  /v1/models/{m}[/versions/{v} | /labels/{l}][/metadata]
 * - any other /v1/ path: 400 "Malformed request: <METHOD> <path>"; GET /v1/models: 400 "Missing model name in request."
 * - the Prometheus text on the metrics path when monitoring is enabled.
 * Errors answer {"error": "<message>"} with the HTTP status of their code.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServingCore, ModelSpecMessage } from './core.js';
import { isJsonList, JsonNumber, parseServingJsonAsync } from './json.js';
import { requestServed } from './memory.js';
import type { ServingMetrics } from './metrics.js';
import { classifyReplyJson, inputFromJson, jsonValueString, predictInputsFromJson, predictReplyPieces, QUOTE_LIMIT, regressReplyJson } from './rest-json.js';
import { signatureDefJson as signatureDefMessageJson } from '../savedmodel/metadata.js';
import { signatureDefJson } from './signature.js';
import { ServingError, toServingError, truncateForGrpc } from './status.js';

/**
 * Default largest REST body, 64 MiB: a batch of 256 224x224 images as TF Serving's REST API
 * carries images, base64 JPEG or PNG in {"b64": ...} (15-50 MB), fits with room to spare. The same
 * batch as lists of pixel numbers is 150-400 MB of JSON, ten times its tensor; gRPC carries it as
 * 147 MiB of tensor_content. At this size the worst body (numbers "1,1,...") holds under 400 MiB while
 * it is parsed.
 */
export const DEFAULT_REST_MAX_BODY_BYTES = 64 * 2 ** 20;

/** Default most JSON values a body may create outside number lists (1 Mi: ~100 MiB of JS objects). */
export const DEFAULT_REST_MAX_JSON_NODES = 2 ** 20;

export interface RestOptions {
  /** Largest accepted request body (--rest_api_max_body_bytes; default {@link DEFAULT_REST_MAX_BODY_BYTES}). */
  maxBodyBytes?: number;
  /**
   * Most strings, keys, objects, lists and loose numbers one body may parse into (numbers in
   * rectangular lists are kept compactly and not counted); default {@link DEFAULT_REST_MAX_JSON_NODES}.
   */
  maxJsonNodes?: number;
  /** --rest_api_timeout_in_ms: a request still running after this answers DEADLINE_EXCEEDED (default 30000; 0 = none). */
  timeoutMs?: number;
  /** Prometheus metrics and their path, when monitoring is enabled. */
  metrics?: { registry: ServingMetrics; path: string };
  /** Called around each API request so the server can drain in-flight requests on shutdown. */
  track?: <T>(work: Promise<T>) => Promise<T>;
}

const PREDICT_RE = /^\/v1\/models\/([^/:]+)(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?:(classify|regress|predict)$/i;
const STATUS_RE = /^\/v1\/models(?:\/([^/:]+))?(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?(?:\/(metadata))?$/i;

function decodeArg(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ServingError('INVALID_ARGUMENT', `Failed to decode ${what}:${s}`);
  }
}

function modelSpec(name: string | undefined, version: string | undefined, label: string | undefined): ModelSpecMessage {
  const spec: ModelSpecMessage = { name: name ? decodeArg(name, 'model name') : '' };
  if (version !== undefined) {
    const v = Number(version);
    if (!Number.isSafeInteger(v)) throw new ServingError('INVALID_ARGUMENT', `Failed to convert version: ${version} to numeric.`);
    spec.version = { value: v };
  }
  if (label !== undefined) spec.version_label = decodeArg(label, 'model version label');
  return spec;
}

/**
 * The body as a JSON object, parsed a slice at a time: number lists compactly for predict, numbers
 * tagged with how they were written for classify/regress (tf.Example features depend on it).
 */
async function bodyObject(body: string, tagNumbers: boolean, maxNodes: number): Promise<Record<string, unknown>> {
  const doc = await parseServingJsonAsync(body, { compact: !tagNumbers, tagNumbers, maxNodes });
  if (doc === null || typeof doc !== 'object' || isJsonList(doc) || doc instanceof JsonNumber) {
    throw new ServingError('INVALID_ARGUMENT', `JSON Value: ${jsonValueString(doc)} Is not object`);
  }
  return doc as Record<string, unknown>;
}

function signatureName(doc: Record<string, unknown>): string {
  if (!Object.hasOwn(doc, 'signature_name')) return '';
  if (typeof doc.signature_name !== 'string') {
    throw new ServingError('INVALID_ARGUMENT', `JSON Value: ${jsonValueString(doc)} not formatted correctly. 'signature_name' key must be a string value.`);
  }
  return doc.signature_name;
}

/**
 * Answers one /v1/ request; returns the JSON text of the reply, or its pieces for a predict reply
 * (which can be large: see {@link predictReplyPieces}).
 */
export async function handleRest(
  core: ServingCore,
  method: string,
  path: string,
  body: string,
  options: { maxJsonNodes?: number } = {},
): Promise<string | Iterable<string>> {
  const malformed = () => new ServingError('INVALID_ARGUMENT', `Malformed request: ${method} ${path.length > QUOTE_LIMIT ? `${path.slice(0, QUOTE_LIMIT)}...` : path}`);
  const maxNodes = options.maxJsonNodes ?? DEFAULT_REST_MAX_JSON_NODES;
  if (method === 'POST') {
    const m = PREDICT_RE.exec(path);
    if (!m) throw malformed();
    const spec = modelSpec(m[1], m[2], m[3]);
    const api = m[4]!.toLowerCase();
    const doc = await bodyObject(body, api !== 'predict', maxNodes);
    spec.signature_name = signatureName(doc);
    if (api === 'predict') {
      const sig = core.restSignature(spec);
      const { inputs, format } = predictInputsFromJson(doc, sig, core.tensorLimits);
      const reply = await core.predict({ model_spec: spec, inputs }, 'REST');
      return predictReplyPieces(reply.outputs, format);
    }
    const input = inputFromJson(doc);
    if (api === 'classify') return classifyReplyJson((await core.classify({ model_spec: spec, input }, 'REST')).result);
    return regressReplyJson((await core.regress({ model_spec: spec, input }, 'REST')).result);
  }
  if (method === 'GET') {
    const m = STATUS_RE.exec(path);
    if (!m) throw malformed();
    if (!m[1]) throw new ServingError('INVALID_ARGUMENT', 'Missing model name in request.');
    const spec = modelSpec(m[1], m[2], m[3]);
    if (m[4]) {
      const r = await core.getModelMetadata({ model_spec: spec, metadata_field: ['signature_def'] }, 'REST');
      const sigs = r.signatureDefs
        ? Object.fromEntries(Object.entries(r.signatureDefs).map(([k, d]) => [k, signatureDefMessageJson(d)]))
        : Object.fromEntries(Object.entries(r.signatures).map(([k, s]) => [k, signatureDefJson(s)]));
      const json = {
        model_spec: { name: r.model_spec.name, signature_name: '', version: String(r.model_spec.version) },
        metadata: { signature_def: { signature_def: sigs } },
      };
      return JSON.stringify(json, null, 1);
    }
    const versions = await core.getModelStatus({ model_spec: spec }, 'REST');
    const json = {
      model_version_status: versions.map((v) => ({
        version: String(v.version),
        state: v.state,
        status: { error_code: v.status.code, error_message: v.status.message },
      })),
    };
    return JSON.stringify(json, null, 1);
  }
  throw malformed();
}

/**
 * Sends a JSON reply with the bare `Content-Type: application/json` TF Serving sends (its REST API
 * page shows it in the curl -i example); express would append "; charset=utf-8" to a string body.
 */
function sendJson(res: Response, status: number, text: string): void {
  res.status(status).setHeader('Content-Type', 'application/json');
  res.send(Buffer.from(text, 'utf8'));
}

function sendError(res: Response, e: unknown): void {
  const s = toServingError(e);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // Messages quote request values only in part; the cut also bounds what any other message echoes.
  sendJson(res, s.httpStatus, `{ "error": ${JSON.stringify(truncateForGrpc(s.message))} }`);
}

/**
 * Answers a request Node's HTTP parser refused before express saw it (the server's 'clientError'):
 * malformed request line, headers or chunked framing (400), headers over Node's limit (431), or
 * headers or body not in time (408), with the API's one-line `{ "error": "..." }` body instead of
 * Node's empty one, then closes the connection (after the whole reply to an earlier pipelined request).
 *
 * @example
 * httpServer.on('clientError', answerClientError);
 */
export function answerClientError(err: Error & { code?: string; reason?: string }, socket: Duplex): void {
  const refuse = () => {
    if (err.code !== 'ECONNRESET' && socket.writable) {
      const [status, reason, message] =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', `Request headers larger than max (${maxHeaderSize} bytes)`]
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? [408, 'Request Timeout', 'Request headers or body not received in time (--rest_api_header_timeout_in_ms, --rest_api_body_timeout_in_ms)']
            : [400, 'Bad Request', `Malformed HTTP request: ${err.reason ?? err.message}`];
      const body = `{ "error": ${JSON.stringify(truncateForGrpc(message))} }`;
      socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
    // As Node's own handler does: the short reply is written at once, then the connection goes.
    socket.destroy();
  };
  // Node keeps the reply of the request being answered on the socket; pipelined requests wait their turn.
  const pending = (socket as Duplex & { _httpMessage?: Response | null })._httpMessage;
  if (pending && pending.req.complete && !pending.writableFinished) {
    // An earlier request on this connection, received whole, is still being answered: its reply goes first.
    pending.once('finish', refuse);
    pending.once('close', () => socket.destroy());
  } else refuse();
}

/** Milliseconds of reply writing between two yields to the event loop. */
const WRITE_SLICE_MS = 10;

/** Sends a reply given in pieces, up to a megabyte per write, yielding to other clients every few milliseconds. */
async function sendPieces(res: Response, pieces: Iterable<string>): Promise<void> {
  let chunk: string[] = [];
  let length = 0;
  let started = performance.now();
  const flush = () => {
    if (!res.headersSent) res.status(200).setHeader('Content-Type', 'application/json');
    res.write(chunk.join(''));
    chunk = [];
    length = 0;
  };
  for (const piece of pieces) {
    chunk.push(piece);
    length += piece.length;
    if (length >= 2 ** 20) flush();
    if (performance.now() - started > WRITE_SLICE_MS) {
      if (length) flush();
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (res.destroyed) return;
      started = performance.now();
    }
  }
  if (!res.headersSent) res.status(200).setHeader('Content-Type', 'application/json');
  res.end(chunk.join(''));
}

/** The express application of the REST API. */
export function restApp(core: ServingCore, options: RestOptions = {}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const limit = options.maxBodyBytes ?? DEFAULT_REST_MAX_BODY_BYTES;
  const maxJsonNodes = options.maxJsonNodes ?? DEFAULT_REST_MAX_JSON_NODES;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const track = options.track ?? (<T>(p: Promise<T>) => p);
  const metrics = options.metrics;
  if (metrics) {
    app.get(metrics.path, async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.render());
    });
  }
  app.use((req, res, next) => {
    if (!/^\/v1\//i.test(req.path)) {
      sendJson(res, 404, `{ "error": ${JSON.stringify(`Not found: ${req.method} ${req.path}`)} }`);
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      res.set('Connection', 'close');
      sendJson(res, 413, `{ "error": ${JSON.stringify(`Request body larger than max (${declared} vs. ${limit}; --rest_api_max_body_bytes)`)} }`);
      req.resume();
      return;
    }
    next();
  });
  app.use(express.raw({ type: () => true, limit }));
  app.use(async (req: Request, res: Response) => {
    const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    req.body = undefined; // the text is all that is needed from here on
    res.on('close', () => requestServed(body.length));
    const work = handleRest(core, req.method, req.path, body, { maxJsonNodes });
    let timer: NodeJS.Timeout | undefined;
    const deadline =
      timeoutMs > 0
        ? new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new ServingError('DEADLINE_EXCEEDED', 'Deadline Exceeded')), timeoutMs);
          })
        : null;
    try {
      const reply = await track(deadline ? Promise.race([work, deadline]) : work);
      if (typeof reply === 'string') sendJson(res, 200, reply);
      else await track(sendPieces(res, reply));
    } catch (e) {
      sendError(res, e);
    } finally {
      if (timer) clearTimeout(timer);
      work.catch(() => undefined);
    }
  });
  // Body reading errors (too large while streaming, aborted, bad encoding).
  app.use((err: { type?: string; status?: number; message?: string; length?: number; limit?: number }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.too.large') {
      res.set('Connection', 'close');
      sendJson(res, 413, `{ "error": ${JSON.stringify(`Request body larger than max (${err.length ?? '?'} vs. ${err.limit ?? limit}; --rest_api_max_body_bytes)`)} }`);
      return;
    }
    sendError(res, new ServingError('INVALID_ARGUMENT', `cannot read the request body: ${err.message ?? String(err)}`));
  });
  return app;
}
