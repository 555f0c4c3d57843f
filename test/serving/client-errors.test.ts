/**
 * Client failures as a person meets them: one line with the cause and what to do, for a port where
 * nothing listens, a port speaking the other transport, and usage mistakes; no stray library logs.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, ServingError, type Transport } from '../../src/serving/index.js';
import { reachProblem } from '../../src/serving/reach.js';
import { runLens, SHARED } from '../helpers/cli.js';

let restLike: http.Server;
let grpcLike: http2.Http2Server;
let closedPort: number;
const IMAGE = `${SHARED}/images/parrot.jpg`;

const listen = async (server: net.Server): Promise<number> => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
};

beforeAll(async () => {
  // An HTTP/1.1-only server (what a REST port is) and an HTTP/2-only one (what a gRPC port is).
  restLike = http.createServer((_req, res) => res.writeHead(200).end('{}'));
  grpcLike = http2.createServer();
  await Promise.all([listen(restLike), listen(grpcLike)]);
  const probe = net.createServer();
  closedPort = await listen(probe);
  await new Promise((r) => probe.close(r));
});

afterAll(async () => {
  await Promise.all([restLike, grpcLike].map((s) => new Promise((r) => s.close(r))));
});

async function failure(target: string, transport: Transport): Promise<ServingError> {
  const client = createClient({ target, transport, retry: { retries: 0 }, timeoutMs: 5000 });
  try {
    const e = await client.getModelMetadata({ model: 'm' }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ServingError);
    return e as ServingError;
  } finally {
    client.close();
  }
}

const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;

describe('connection errors of the client', () => {
  it('name the address, the transport and the likely fix when nothing listens', async () => {
    const target = `127.0.0.1:${closedPort}`;
    const grpc = await failure(target, 'grpc');
    expect(grpc.status).toBe('UNAVAILABLE');
    expect(grpc.message).toBe(`cannot reach ${target} over gRPC: connection refused; is lens serve (or tensorflow_model_server) running there? For a REST port add --transport rest`);
    const rest = await failure(target, 'rest');
    expect(rest.message).toBe(`cannot reach ${target} over REST: connection refused; is lens serve (or tensorflow_model_server) running there? For a gRPC port use --transport grpc`);
  });

  it('tell a gRPC client pointed at a REST port, and a REST client at a gRPC port, to switch', async () => {
    const grpc = await failure(`127.0.0.1:${portOf(restLike)}`, 'grpc');
    expect(grpc.status).toBe('UNAVAILABLE');
    expect(grpc.message).toMatch(/over gRPC: the port does not speak HTTP\/2 \(gRPC\); it looks like a REST port: add --transport rest/);
    const rest = await failure(`127.0.0.1:${portOf(grpcLike)}`, 'rest');
    expect(rest.message).toMatch(/over REST: the port does not answer HTTP\/1\.1 requests; it looks like a gRPC port: use --transport grpc/);
  });

  it('say when a host name does not resolve, and leave other errors alone', () => {
    expect(reachProblem({ transport: 'grpc', target: 'nosuch.invalid:8500', cause: 'Name resolution failed for target dns:nosuch.invalid:8500' })).toBe(
      'cannot reach nosuch.invalid:8500 over gRPC: the host name does not resolve (dns:nosuch.invalid:8500)',
    );
    expect(reachProblem({ transport: 'rest', target: 'x:1', cause: 'Servable not found for request: Latest(m)' })).toBeUndefined();
  });
});

describe('the CLI', () => {
  it('prints a connection failure in one line', async () => {
    const r = await runLens(['predict', '--server', `127.0.0.1:${closedPort}`, '--model', 'm', IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`lens: cannot reach 127.0.0.1:${closedPort} over gRPC: connection refused; is lens serve (or tensorflow_model_server) running there? For a REST port add --transport rest\n`);
  });

  it('prints unknown and missing flags in one line that points at the command\'s help', async () => {
    const unknown = await runLens(['profile', '--server', 'localhost:8500', '--model', 'm', '--batch-size', '4']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^lens: unknown option '--batch-size' \(Did you mean --batch-sizes\?\); see lens profile --help\n$/);
    const missing = await runLens(['predict', IMAGE]);
    expect(missing.stderr).toBe("lens: required option '--server <host:port>' not specified; see lens predict --help\n");
    const nested = await runLens(['k8s', 'render', '--model-name', 'm', '--bogus']);
    expect(nested.stderr).toBe("lens: unknown option '--bogus'; see lens k8s render --help\n");
    const bad = await runLens(['predict', '--server', 'localhost:8500', '--transport', 'http', '--model', 'm', IMAGE]);
    expect(bad.stderr).toBe('lens: --transport must be grpc or rest, got "http"\n');
  });

  it('keeps grpc-js\'s own log lines out of lens serve\'s output on a busy port', async () => {
    const busy = net.createServer();
    const port = await listen(busy);
    try {
      const r = await runLens(['serve', '--port', String(port), '--model_name', 'half', '--model_base_path', `${SHARED}/testdata/savedmodels/saved_model_half_plus_two_cpu`]);
      expect(r.code).toBe(1);
      expect(r.stderr).not.toMatch(/^E /m);
      expect(r.stderr.trimEnd().split('\n').filter((l) => l.startsWith('lens:'))).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^lens: cannot listen on 127\\.0\\.0\\.1:${port} \\(--port\\).*EADDRINUSE`, 'm'));
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });
});
