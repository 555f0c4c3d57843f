/**
 * Clients through a host-routing ingress, as a KServe predictor is reached: a real `lens serve`
 * (started as the user starts it) behind a local stand-in for the cluster's gateway that forwards
 * HTTP/1.1 and h2c only when the Host header or :authority names the predictor. Every client
 * command runs through it over gRPC and REST with `--host-header`; without it, the error says that
 * the ingress found no route and suggests the flag.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createServer, type AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth } from '../../src/serving/health.js';
import { createClient, ServingError, startServer, type Transport } from '../../src/serving/index.js';
import { REPO_ROOT, runLens, SHARED } from '../helpers/cli.js';
import { startIngressStandIn, type IngressStandIn } from '../helpers/ingress.js';

const HOST = 'cifar.models.example.com';
const CIFAR = resolve(SHARED, 'testdata/savedmodels-cnn/dotnet-cifar-conv-tf1');
const IMAGES = ['cat.bmp', 'parrot.jpg'].map((f) => resolve(SHARED, 'images', f));
const TRANSPORTS: Transport[] = ['grpc', 'rest'];

let dir: string;
let serve: ChildProcess;
let ports: { grpcPort: number; restPort: number };
let ingress: IngressStandIn;
let gateway: string;

/** A free loopback port (`lens serve`, like tensorflow_model_server, reads --rest_api_port 0 as "no REST"). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

/** `lens serve` as a child process; resolves with the ports it printed. */
async function startLensServe(basePath: string): Promise<{ child: ChildProcess; grpcPort: number; restPort: number }> {
  const restPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, 'src/cli/main.ts'), 'serve', '--port', '0', '--rest_api_port', String(restPort), '--model_name', 'cifar', '--model_base_path', basePath, '--json'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolvePromise, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('\n')) {
        const summary = JSON.parse(stdout.split('\n')[0]!) as { grpcPort: number; restPort: number };
        resolvePromise({ child, ...summary });
      }
    });
    child.on('exit', (code) => reject(new Error(`lens serve exited with ${code}: ${stderr}`)));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-ingress-'));
  await mkdir(join(dir, 'cifar'));
  await symlink(CIFAR, join(dir, 'cifar', '1'));
  const started = await startLensServe(join(dir, 'cifar'));
  serve = started.child;
  ports = { grpcPort: started.grpcPort, restPort: started.restPort };
  ingress = await startIngressStandIn([{ host: HOST, grpcPort: ports.grpcPort, restPort: ports.restPort }]);
  gateway = `127.0.0.1:${ingress.port}`;
}, 120_000);

afterAll(async () => {
  await ingress?.close();
  if (serve && serve.exitCode === null) {
    const exited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGTERM');
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
});

const routedSince = (from: number, protocol: 'h2c' | 'http/1.1') => ingress.seen.slice(from).filter((s) => s.protocol === protocol && s.routed && s.host === HOST).length;
const protocolOf = (t: Transport) => (t === 'grpc' ? 'h2c' : 'http/1.1');

describe('the library client through the ingress', () => {
  it.each(TRANSPORTS)('sends the host name as Host / :authority over %s and is routed', async (transport) => {
    const from = ingress.seen.length;
    const client = createClient({ target: gateway, transport, hostHeader: HOST, retry: { retries: 0 } });
    try {
      const meta = await client.getModelMetadata({ model: 'cifar' });
      expect(meta.model_spec.name).toBe('cifar');
      expect(Object.keys(meta.signatures)).toContain('serving_default');
    } finally {
      client.close();
    }
    expect(routedSince(from, protocolOf(transport))).toBeGreaterThanOrEqual(1);
  });

  it.each(TRANSPORTS)('without the host name, says over %s that the ingress found no route', async (transport) => {
    const client = createClient({ target: gateway, transport, retry: { retries: 0 } });
    try {
      const e = await client.getModelMetadata({ model: 'cifar' }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ServingError);
      expect((e as ServingError).status).toBe('NOT_FOUND');
      expect((e as ServingError).message).toBe(
        `${gateway} answered HTTP 404 without a TF Serving reply: the ingress found no route for host "${gateway}"; set --host-header to the predictor's host name (KServe: the host of \`kubectl get inferenceservice NAME -o jsonpath={.status.url}\`)`,
      );
    } finally {
      client.close();
    }
  });

  it('checks gRPC health through the ingress', async () => {
    await expect(checkHealth(gateway, 'cifar', { hostHeader: HOST })).resolves.toBe('SERVING');
    await expect(checkHealth(gateway, 'cifar', { hostHeader: 'other.models.example.com' })).rejects.toThrow(/ingress found no route for host "other.models.example.com"; check --host-header/);
  });
});

describe('every client command through the ingress', () => {
  it.each(TRANSPORTS)('lens predict over %s answers as the server does directly', async (transport) => {
    const direct = await runLens(['predict', '--server', `127.0.0.1:${transport === 'grpc' ? ports.grpcPort : ports.restPort}`, '--transport', transport, '--model', 'cifar', '--top-k', '3', '--json', ...IMAGES]);
    expect(direct.code, direct.stderr).toBe(0);
    const from = ingress.seen.length;
    const routed = await runLens(['predict', '--server', gateway, '--transport', transport, '--host-header', HOST, '--model', 'cifar', '--top-k', '3', '--json', ...IMAGES]);
    // Only the note that this model's output holds logits, as directly.
    expect(routed.stderr).toBe(direct.stderr);
    expect(routed.code).toBe(0);
    expect(JSON.parse(routed.stdout)).toEqual(JSON.parse(direct.stdout));
    expect(routedSince(from, protocolOf(transport))).toBeGreaterThanOrEqual(2); // metadata, then predict
  });

  it.each(TRANSPORTS)('lens predict over %s without --host-header fails in one line that suggests it', async (transport) => {
    const r = await runLens(['predict', '--server', gateway, '--transport', transport, '--model', 'cifar', IMAGES[0]!]);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^lens: 127\.0\.0\.1:\d+ answered HTTP 404 without a TF Serving reply: the ingress found no route for host "127\.0\.0\.1:\d+"; set --host-header /);
  });

  it.each(TRANSPORTS)('lens profile over %s records the host name and measures every cell', async (transport) => {
    const out = join(dir, `profile-${transport}`);
    const from = ingress.seen.length;
    const r = await runLens(['profile', '--server', gateway, '--transport', transport, '--host-header', HOST, '--model', 'cifar', '--batch-sizes', '1,2', '--trials', '3', '--warmup', '1', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(await readFile(join(out, 'profile.json'), 'utf8')) as { hostHeader: string; transport: string; rows: { batchSize: number; requests: number; errors: number }[] };
    expect(result).toMatchObject({ hostHeader: HOST, transport });
    expect(result.rows.map((x) => [x.batchSize, x.requests, x.errors])).toEqual([
      [1, 3, 0],
      [2, 3, 0],
    ]);
    // 2 batch sizes x (1 warm-up + 3 trials) predicts, plus the metadata call.
    expect(routedSince(from, protocolOf(transport))).toBeGreaterThanOrEqual(9);
  });

  it.each(TRANSPORTS)('lens verify over %s finds the served model equal to its local copy', async (transport) => {
    const r = await runLens(['verify', '--server', gateway, '--transport', transport, '--host-header', HOST, '--model', 'cifar', '--served-output', 'logit', '--local', CIFAR, ...IMAGES, '--json', '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; images: { maxProbabilityDifference: number }[] };
    expect(report.ok).toBe(true);
    expect(report.images).toHaveLength(2);
  });

  it.each(TRANSPORTS)('lens explain --server over %s explains the served model', async (transport) => {
    const out = join(dir, `explain-${transport}`);
    const r = await runLens(['explain', '--server', gateway, '--transport', transport, '--host-header', HOST, '--served-model', 'cifar', '--method', 'occlusion', '--window', '8', '--stride', '8', IMAGES[0]!, '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ method: 'occlusion', model: 'cifar' });
  });

  it.each(TRANSPORTS)('lens health over %s checks the predictor through the ingress', async (transport) => {
    const ok = await runLens(['health', gateway, '--transport', transport, '--host-header', HOST, '--service', 'cifar']);
    expect(ok).toMatchObject({ code: 0, stdout: 'SERVING\n', stderr: '' });
  });

  it('lens health without the host name says the ingress found no route', async () => {
    const lost = await runLens(['health', gateway, '--service', 'cifar']);
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(/^lens: .*the ingress found no route for host .*; set --host-header/);
  });
});

describe('the host name with TLS', () => {
  it('is also the server name the certificate is checked against (SNI), over gRPC and REST', async () => {
    const name = 'predictor.models.example.com';
    const key = join(dir, 'tls-key.pem');
    const certFile = join(dir, 'tls-cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', certFile, '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
    const pem = { cert: await readFile(certFile), key: await readFile(key) };
    const secure = await startServer({ port: 0, restApiPort: false, modelName: 'cifar', modelBasePath: join(dir, 'cifar'), fileSystemPollWaitSeconds: 0, ssl: pem });
    // A REST endpoint behind TLS that reports what it was asked for.
    const asked: { host?: string; servername?: string | false | null }[] = [];
    const rest = createHttpsServer(pem, (req, res) => {
      asked.push({ host: req.headers.host, servername: (req.socket as TLSSocket).servername });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}');
    });
    await new Promise<void>((r) => rest.listen(0, '127.0.0.1', r));
    const restTarget = `127.0.0.1:${(rest.address() as AddressInfo).port}`;
    try {
      for (const [transport, target] of [['grpc', `127.0.0.1:${secure.grpcPort}`], ['rest', restTarget]] as const) {
        const named = createClient({ target, transport, tls: { ca: pem.cert }, hostHeader: name, retry: { retries: 0 } });
        expect((await named.getModelStatus({ model: 'cifar' }))[0]!.state, transport).toBe('AVAILABLE');
        named.close();
        // By address alone the certificate (issued to the host name) does not match.
        const byAddress = createClient({ target, transport, tls: { ca: pem.cert }, retry: { retries: 0 }, timeoutMs: 5000 });
        await expect(byAddress.getModelStatus({ model: 'cifar' }), transport).rejects.toMatchObject({ status: 'UNAVAILABLE' });
        byAddress.close();
      }
      expect(asked).toEqual([{ host: name, servername: name }]);
    } finally {
      await secure.close();
      await new Promise((r) => rest.close(r));
    }
  });
});
