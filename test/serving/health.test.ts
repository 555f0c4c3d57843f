/**
 * grpc.health.v1.Health on the real server over loopback gRPC: Check and Watch for the server ("")
 * and for models, unknown names, models that load late or fail, the drain on close, servers
 * without the service, and `lens health`.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth, createClient, createServable, startServer, watchHealth, type RunningServer, type Servable } from '../../src/serving/index.js';
import { runLens } from '../helpers/cli.js';

/** A promise with its resolve function, to hold a loader or a request at a known point. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

const SIGNATURES = {
  serving_default: {
    methodName: 'tensorflow/serving/predict',
    inputs: { x: { name: 'x:0', dtype: 'DT_FLOAT', shape: [-1] } },
    outputs: { y: { name: 'y:0', dtype: 'DT_FLOAT', shape: [-1] } },
  },
};
const identity = (): Servable => createServable({ signatures: SIGNATURES, run: async (_s, { x }) => ({ y: x! }) });

let dir: string;
let server: RunningServer;
let address: string;
/** Released by the test that makes model "late" load. */
const lateLoad = gate();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lens-health-'));
  for (const m of ['a', 'b', 'late', 'broken']) await mkdir(join(dir, m, '1'), { recursive: true });
  server = await startServer({
    port: 0,
    restApiPort: false,
    models: [
      { name: 'a', basePath: join(dir, 'a') },
      { name: 'b', basePath: join(dir, 'b') },
    ],
    fileSystemPollWaitSeconds: 0,
    loader: async (_dir, id) => {
      if (id.name === 'late') await lateLoad.promise;
      if (id.name === 'broken') throw new Error('weights are missing');
      return identity();
    },
  });
  address = `127.0.0.1:${server.grpcPort}`;
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const sources = (...names: string[]) => names.map((name) => ({ name, basePath: join(dir, name) }));

describe('Check', () => {
  it('answers SERVING for the server ("") and for each served model', async () => {
    expect(await checkHealth(address)).toBe('SERVING');
    expect(await checkHealth(address, 'a')).toBe('SERVING');
    expect(await checkHealth(address, 'b')).toBe('SERVING');
    expect(server.health.status('')).toBe('SERVING');
  });

  it('fails with NOT_FOUND for a name that is neither "" nor a model', async () => {
    await expect(checkHealth(address, 'nope')).rejects.toMatchObject({ status: 'NOT_FOUND', message: expect.stringContaining('unknown service "nope"') });
  });

  it('answers NOT_SERVING for a configured model with no available version', async () => {
    await expect(server.manager.configure(sources('a', 'b', 'broken'))).rejects.toThrow(/weights are missing/);
    expect(await checkHealth(address, 'broken')).toBe('NOT_SERVING');
    expect(await checkHealth(address)).toBe('SERVING');
    await server.manager.configure(sources('a', 'b'));
    await expect(checkHealth(address, 'broken')).rejects.toMatchObject({ status: 'NOT_FOUND' });
  });
});

describe('Watch', () => {
  it('sends SERVICE_UNKNOWN for an unknown model and keeps following it as it is added, loads and is dropped', async () => {
    const watch = watchHealth(address, 'late');
    expect((await watch.next()).value).toBe('SERVICE_UNKNOWN');
    const configured = server.manager.configure(sources('a', 'b', 'late'));
    expect((await watch.next()).value).toBe('NOT_SERVING');
    expect(await checkHealth(address, 'late')).toBe('NOT_SERVING');
    lateLoad.open();
    expect((await watch.next()).value).toBe('SERVING');
    await configured;
    expect(await checkHealth(address, 'late')).toBe('SERVING');
    await server.manager.configure(sources('a', 'b'));
    expect((await watch.next()).value).toBe('SERVICE_UNKNOWN');
    await watch.return(undefined);
  });

  it('ends when the caller aborts', async () => {
    const stop = new AbortController();
    const seen: string[] = [];
    for await (const status of watchHealth(address, 'a', { signal: stop.signal })) {
      seen.push(status);
      stop.abort();
    }
    expect(seen).toEqual(['SERVING']);
  });
});

describe('drain on close (what SIGTERM runs)', () => {
  it('turns every service NOT_SERVING and ends Watch streams while in-flight requests still run', async () => {
    const entered = gate();
    const finish = gate();
    const drained = await startServer({
      port: 0,
      restApiPort: false,
      models: sources('a'),
      fileSystemPollWaitSeconds: 0,
      loader: async () =>
        createServable({
          signatures: SIGNATURES,
          run: async (_s, { x }) => {
            entered.open();
            await finish.promise;
            return { y: x! };
          },
        }),
    });
    const target = `127.0.0.1:${drained.grpcPort}`;
    const collect = async (service: string) => {
      const seen: string[] = [];
      for await (const status of watchHealth(target, service)) seen.push(status);
      return seen;
    };
    const overall = collect('');
    const model = collect('a');
    expect(await checkHealth(target, 'a')).toBe('SERVING');
    const client = createClient({ target, retry: { retries: 0 } });
    let replied = false;
    const request = client.predict({ model: 'a', inputs: { x: { dtype: 'float32', shape: [1], values: new Float32Array([4]) } } }).then((r) => {
      replied = true;
      return r;
    });
    await entered.promise;
    const closed = drained.close();
    expect(await overall).toEqual(['SERVING', 'NOT_SERVING']);
    expect(await model).toEqual(['SERVING', 'NOT_SERVING']);
    expect(drained.health.status('')).toBe('NOT_SERVING');
    expect(replied).toBe(false);
    finish.open();
    expect(Array.from((await request).outputs.y!.values as Float32Array)).toEqual([4]);
    await closed;
    client.close();
    await expect(checkHealth(target)).rejects.toMatchObject({ status: 'UNAVAILABLE' });
  });
});

describe('servers without the health service', () => {
  it('a gRPC server that lacks grpc.health.v1 (like TF Serving) is UNIMPLEMENTED', async () => {
    const bare = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => bare.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    try {
      await expect(checkHealth(`127.0.0.1:${port}`)).rejects.toMatchObject({ status: 'UNIMPLEMENTED', message: expect.stringContaining('TensorFlow Serving does not') });
    } finally {
      bare.forceShutdown();
    }
  });
});

describe('lens health', () => {
  it('prints the status and exits 0 when serving', async () => {
    const r = await runLens(['health', address, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ address, service: '', status: 'SERVING' });
    const text = await runLens(['health', address, '--service', 'a']);
    expect([text.code, text.stdout]).toEqual([0, 'SERVING\n']);
  });

  it('exits 1 for a model that is not serving and for an unknown one', async () => {
    await expect(server.manager.configure(sources('a', 'b', 'broken'))).rejects.toThrow();
    const notServing = await runLens(['health', address, '--service', 'broken']);
    expect([notServing.code, notServing.stdout, notServing.stderr]).toEqual([1, 'NOT_SERVING\n', `lens: ${address}: the model broken is NOT_SERVING\n`]);
    const unknown = await runLens(['health', address, '--service', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^lens: 127\.0\.0\.1:\d+: unknown service "nope"/);
    await server.manager.configure(sources('a', 'b'));
  });
});
