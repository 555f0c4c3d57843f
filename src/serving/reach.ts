/**
 * Why a client could not talk to a server, in one line with a hint: the transport errors of
 * grpc-js and node:http (ECONNREFUSED, "Protocol error", HTTP parse errors, bare 404s) turned into
 * what a person can act on: nothing listens, the port speaks the other transport, or an ingress
 * gateway (KServe's Istio or Kourier) found no route for the host name the request carried.
 *
 * @example
 * reachProblem({ transport: 'grpc', target: '127.0.0.1:29999', cause: 'connect ECONNREFUSED 127.0.0.1:29999' });
 * // 'cannot reach 127.0.0.1:29999 over gRPC: connection refused; is lens serve running? For a REST port add --transport rest'
 */
import type { Transport } from './client-api.js';

/** What a failed call saw. */
export interface ReachContext {
  transport: Transport;
  /** host:port the client connects to. */
  target: string;
  /** The Host header / :authority sent, when it differs from the target. */
  hostHeader?: string | undefined;
  /** The library's error text (or error code such as ECONNREFUSED or HPE_INVALID_CONSTANT). */
  cause: string;
}

const NAMES: Record<Transport, string> = { grpc: 'gRPC', rest: 'REST' };
const OTHER_PORT: Record<Transport, string> = {
  grpc: 'For a REST port add --transport rest',
  rest: 'For a gRPC port use --transport grpc',
};

/**
 * The one-line explanation of a connection-level failure, or undefined when `cause` is not one
 * (an error the server itself answered stays as the server wrote it).
 */
export function reachProblem(ctx: ReachContext): string | undefined {
  const where = `cannot reach ${ctx.target} over ${NAMES[ctx.transport]}`;
  const c = ctx.cause;
  if (/ECONNREFUSED/.test(c)) return `${where}: connection refused; is lens serve (or tensorflow_model_server) running there? ${OTHER_PORT[ctx.transport]}`;
  if (ctx.transport === 'grpc' && /Protocol error|HTTP\/1|Connection dropped|http2.*(?:GOAWAY|frame)/i.test(c)) {
    return `${where}: the port does not speak HTTP/2 (gRPC); it looks like a REST port: add --transport rest, or use the gRPC port (8500; KServe: 9000 behind the ingress)`;
  }
  if (ctx.transport === 'rest' && /HPE_|Parse Error/.test(c)) {
    return `${where}: the port does not answer HTTP/1.1 requests; it looks like a gRPC port: use --transport grpc, or the REST port (8501; KServe: 8080 behind the ingress)`;
  }
  if (/ENOTFOUND|EAI_AGAIN|Name resolution failed/i.test(c)) return `${where}: the host name does not resolve (${c.replace(/^.*?(getaddrinfo |Name resolution failed for target )/, '')})`;
  const code = /\b(ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EPIPE|ECONNABORTED)\b/.exec(c)?.[1];
  if (code) return `${where}: ${code}${code === 'ECONNRESET' ? ' (the connection was closed: a TLS port without --tls, or a proxy in the way?)' : ''}`;
  return undefined;
}

/**
 * The explanation of a 404 that did not come from TF Serving (which always answers with its own
 * error text): an ingress gateway that routes by host name found no route for the request's Host
 * header (REST) or :authority (gRPC).
 *
 * @example
 * noRouteProblem({ transport: 'rest', target: 'ingress:80' });
 */
export function noRouteProblem(ctx: Omit<ReachContext, 'cause'>): string {
  const host = ctx.hostHeader ?? ctx.target;
  return (
    `${ctx.target} answered HTTP 404 without a TF Serving reply: the ingress found no route for host "${host}"; ` +
    `${ctx.hostHeader ? 'check' : 'set'} --host-header to the predictor's host name ` +
    '(KServe: the host of `kubectl get inferenceservice NAME -o jsonpath={.status.url}`)'
  );
}

/**
 * A Host header or :authority value: a DNS name or IP literal with an optional port.
 *
 * @example
 * isHostHeader('resnet.models.example.com'); // true
 */
export function isHostHeader(value: string): boolean {
  return /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(value);
}

/** The host part of a Host header value (no port), for TLS server names. */
export function hostOfHeader(value: string): string {
  if (value.startsWith('[')) return value.slice(1, value.indexOf(']'));
  const i = value.lastIndexOf(':');
  return i > 0 ? value.slice(0, i) : value;
}
