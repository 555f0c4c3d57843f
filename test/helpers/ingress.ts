/**
 * A local stand-in for a Kubernetes ingress gateway as KServe uses it (Istio or Kourier in front of
 * Knative): one cleartext port speaking HTTP/1.1 and h2c, routing by host name only. A request
 * whose `Host` (HTTP/1.1) or `:authority` (HTTP/2, gRPC) names a known predictor goes to that
 * predictor's REST port (HTTP/1.1) or gRPC port (h2c); anything else gets the gateway's bare
 * `404` with an empty body, as Envoy answers when no route matches.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';

export interface PredictorRoute {
  /** Host name the gateway routes to this predictor, e.g. `cifar.models.example.com`. */
  host: string;
  restPort: number;
  grpcPort: number;
}

export interface IngressStandIn {
  port: number;
  /** Every request seen: protocol, host name asked for, and whether a route matched. */
  seen: { protocol: 'http/1.1' | 'h2c'; host: string; path: string; routed: boolean }[];
  close(): Promise<void>;
}

const UPSTREAM = '127.0.0.1';

/** The host part of a Host/:authority value (the gateway matches names, whatever the port). */
function hostName(value: string | undefined): string {
  return (value ?? '').replace(/:\d+$/, '').toLowerCase();
}

/** HTTP/2 headers a proxy must not copy from one connection to the next. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/**
 * Starts the stand-in on 127.0.0.1 (port 0 = any free port).
 *
 * @example
 * const ingress = await startIngressStandIn([{ host: 'cifar.models.example.com', restPort: 8501, grpcPort: 8500 }]);
 */
export async function startIngressStandIn(routes: readonly PredictorRoute[], port = 0): Promise<IngressStandIn> {
  const byHost = new Map(routes.map((r) => [r.host.toLowerCase(), r]));
  const seen: IngressStandIn['seen'] = [];
  const sockets = new Set<net.Socket>();
  const sessions = new Map<number, http2.ClientHttp2Session>();

  const h1 = http.createServer((req, res) => {
    const route = byHost.get(hostName(req.headers.host));
    seen.push({ protocol: 'http/1.1', host: req.headers.host ?? '', path: req.url ?? '', routed: route !== undefined });
    if (!route) {
      res.writeHead(404, { server: 'ingress-stand-in', 'content-length': '0' }).end();
      return;
    }
    const upstream = http.request({ host: UPSTREAM, port: route.restPort, method: req.method, path: req.url, headers: req.headers }, (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
    });
    upstream.on('error', () => res.headersSent ? res.destroy() : res.writeHead(503, { 'content-length': '0' }).end());
    req.pipe(upstream);
  });

  const session = (grpcPort: number): http2.ClientHttp2Session => {
    let s = sessions.get(grpcPort);
    if (!s || s.closed || s.destroyed) {
      s = http2.connect(`http://${UPSTREAM}:${grpcPort}`);
      s.on('error', () => sessions.delete(grpcPort));
      sessions.set(grpcPort, s);
    }
    return s;
  };

  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    const authority = String(headers[':authority'] ?? '');
    const route = byHost.get(hostName(authority));
    seen.push({ protocol: 'h2c', host: authority, path: String(headers[':path'] ?? ''), routed: route !== undefined });
    if (!route) {
      stream.respond({ ':status': 404, server: 'ingress-stand-in' }, { endStream: true });
      return;
    }
    const forward: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) forward[k] = v;
    const upstream = session(route.grpcPort).request(forward);
    let trailers: http2.IncomingHttpHeaders = {};
    upstream.on('response', (reply, flags) => {
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      stream.respond(reply, endStream ? { endStream: true } : { waitForTrailers: true });
      if (!endStream) upstream.pipe(stream);
    });
    upstream.on('trailers', (t) => (trailers = t));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    upstream.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    stream.on('close', () => upstream.destroyed || upstream.close());
    stream.pipe(upstream);
  });

  // One port for both protocols: an h2c connection starts with the HTTP/2 preface ("PRI * HTTP/2.0").
  // The first bytes decide which inner server (each on its own loopback port) the bytes go to;
  // http2 reads sockets natively, so a socket cannot be handed over once data was read from it.
  const listen = (server: net.Server) => new Promise<number>((resolve) => server.listen(0, UPSTREAM, () => resolve((server.address() as net.AddressInfo).port)));
  const inner = { h1: await listen(h1), h2: await listen(h2) };
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const front = net.createServer((socket) => {
    track(socket);
    socket.once('data', (first) => {
      const to = net.connect(first.subarray(0, 4).toString('latin1') === 'PRI ' ? inner.h2 : inner.h1, UPSTREAM);
      track(to);
      to.write(first);
      socket.pipe(to).pipe(socket);
      to.on('close', () => socket.destroy());
      socket.on('close', () => to.destroy());
    });
  });
  await new Promise<void>((resolve) => front.listen(port, UPSTREAM, resolve));
  return {
    port: (front.address() as net.AddressInfo).port,
    seen,
    async close() {
      for (const s of sessions.values()) s.destroy();
      for (const s of sockets) s.destroy();
      await Promise.all([front, h1, h2].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
