import { copyFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SHARED } from '../helpers/cli.js';
import { isLensError } from '../../src/core/errors.js';
import {
  crc32c,
  maskCrc,
  readTable,
  readTensorBundle,
  unmaskCrc,
  writeTable,
  writeTensorBundle,
  type TensorBundle,
} from '../../src/savedmodel/index.js';
import type { HostTensor } from '../../src/tensor/index.js';

const SM = resolve(SHARED, 'testdata/savedmodels');
const CNN = resolve(SHARED, 'testdata/savedmodels-cnn');
const tmp = mkdtempSync(join(tmpdir(), 'lens-bundle-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function expectLensError(p: Promise<unknown> | (() => unknown), code: string, text: RegExp): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(isLensError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(text);
    return;
  }
  throw new Error(`expected a ${code} error`);
}

const scalar = async (b: TensorBundle, name: string) => Array.from((await b.read(name)).values as Float32Array);

describe('CRC32C', () => {
  it('matches the standard check value and masks reversibly', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    const data = new Uint8Array(1000).map((_, i) => (i * 31) & 0xff);
    expect(crc32c(data.subarray(300), crc32c(data.subarray(0, 300)))).toBe(crc32c(data));
    for (const v of [0, 1, 0xffffffff, 0x12345678]) expect(unmaskCrc(maskCrc(v))).toBe(v);
  });
});

describe('LevelDB tables', () => {
  it('round-trips many prefix-sharing keys across blocks', () => {
    const entries = Array.from({ length: 500 }, (_, i) => ({ key: `layer_${String(i).padStart(4, '0')}/kernel`, value: new Uint8Array([i & 0xff, i >> 8]) }));
    const bytes = writeTable([...entries].reverse(), { blockSize: 256 });
    const back = readTable(bytes, 'mem.index');
    expect(back.map((e) => e.key)).toEqual(entries.map((e) => e.key));
    expect(back.map((e) => Array.from(e.value))).toEqual(entries.map((e) => Array.from(e.value)));
  });

  it('reads Snappy-compressed index blocks of real files', () => {
    const bytes = readFileSync(join(SM, 'saved_model_half_plus_two_cpu/00000123/variables/variables.index'));
    expect(readTable(bytes, 'variables.index').map((e) => e.key)).toEqual(['', 'a', 'a2', 'b', 'c', 'c2']);
  });
});

describe('TensorBundle reading', () => {
  it('reads every fixture bundle with known values', async () => {
    const tf1 = await readTensorBundle(join(SM, 'saved_model_half_plus_two_cpu/00000123'));
    expect(tf1.names).toEqual(['a', 'a2', 'b', 'c', 'c2']);
    expect(await scalar(tf1, 'a')).toEqual([0.5]);
    expect(await scalar(tf1, 'b')).toEqual([2]);
    expect(await scalar(tf1, 'c')).toEqual([3]);
    const three = await readTensorBundle(join(SM, 'saved_model_half_plus_three/00000123/variables/variables.index'));
    expect(await scalar(three, 'b')).toEqual([3]);
    for (const v of ['00000123', '00000124']) {
      const b = await readTensorBundle(join(SM, 'saved_model_half_plus_two_2_versions', v));
      expect(Object.fromEntries([...(await b.readMany())].map(([k, t]) => [k, Array.from(t.values as Float32Array)]))).toEqual({ a: [0.5], b: [2], c: [3] });
    }
    const counter = await readTensorBundle(join(SM, 'saved_model_counter/00000123'));
    expect(await scalar(counter, 'counter')).toEqual([0]);
    const tf2 = await readTensorBundle(join(SM, 'saved_model_half_plus_two_tf2_cpu/00000123'));
    expect(await scalar(tf2, 'a/.ATTRIBUTES/VARIABLE_VALUE')).toEqual([0.5]);
    const graph = await tf2.read('_CHECKPOINTABLE_OBJECT_GRAPH');
    expect(graph.dtype).toBe('string');
    expect(graph.shape).toEqual([]);
    expect((graph.values as Uint8Array[])[0]!.length).toBe(613);
  });

  it('reads the CNN bundles: shapes, dtypes, string object graphs', async () => {
    const mnist = await readTensorBundle(join(CNN, 'dotnet-mnist-conv-tf1'));
    expect(mnist.entries.get('Variable')?.shape).toEqual([6, 6, 1, 6]);
    const all = await mnist.readMany();
    expect(all.size).toBe(20);
    expect((all.get('Variable')!.values as Float32Array).length).toBe(216);
    const kws = await readTensorBundle(join(CNN, 'mlcommons-tiny-kws-dscnn-tf2'));
    expect(kws.names.length).toBe(142);
    const kwsAll = await kws.readMany();
    expect([...kwsAll.values()].filter((t) => t.dtype === 'string').length).toBe(1);
    const cifar = await readTensorBundle(join(CNN, 'dotnet-cifar-conv-tf1'));
    expect((await cifar.read('W1')).shape).toEqual([5408, 10]);
  });

  it('refuses a V1 tensor-slice checkpoint (bad_half_plus_two) clearly', async () => {
    const copy = join(tmp, 'v1');
    copyFileSync(join(SM, 'bad_half_plus_two/00000123/export'), `${copy}.index`);
    await expectLensError(readTensorBundle(copy), 'SAVEDMODEL_UNSUPPORTED', /v1\.index is an old V1 checkpoint/);
  });
});

describe('TensorBundle corruption', () => {
  const fixture = join(SM, 'saved_model_half_plus_two_2_versions/00000123/variables');
  const copy = (name: string): string => {
    const dir = join(tmp, name);
    cpSync(fixture, dir, { recursive: true });
    return join(dir, 'variables');
  };

  it('flipped byte in an index block: CRC error naming the file', async () => {
    const prefix = copy('flip-index');
    const bytes = readFileSync(`${prefix}.index`);
    bytes[3] ^= 0x40;
    writeFileSync(`${prefix}.index`, bytes);
    await expectLensError(readTensorBundle(prefix), 'BUNDLE_CORRUPT', /variables\.index: data block 0 .*fails its CRC32C check/);
  });

  it('flipped byte in a data shard: CRC error naming the tensor and shard', async () => {
    const prefix = copy('flip-data');
    const shard = `${prefix}.data-00000-of-00001`;
    const bytes = readFileSync(shard);
    bytes[5] ^= 0x01;
    writeFileSync(shard, bytes);
    const b = await readTensorBundle(prefix);
    await expectLensError(b.read('b'), 'BUNDLE_CORRUPT', /tensor "b" in variables\.data-00000-of-00001: CRC32C mismatch/);
    // Reading all: the failure comes while the next tensor's read is in flight.
    await expectLensError(b.readMany(), 'BUNDLE_CORRUPT', /tensor "b" .*CRC32C mismatch/);
    expect(await scalar(b, 'a')).toEqual([0.5]);
    const unchecked = await readTensorBundle(prefix, { verify: false });
    expect((await unchecked.read('b')).values.length).toBe(1);
  });

  it('wrong magic, truncated index, missing or short shard', async () => {
    const magic = copy('magic');
    const m = readFileSync(`${magic}.index`);
    m[m.length - 1] = 0;
    writeFileSync(`${magic}.index`, m);
    await expectLensError(readTensorBundle(magic), 'BUNDLE_CORRUPT', /variables\.index: bad table magic/);

    const trunc = copy('trunc');
    const t = readFileSync(`${trunc}.index`);
    writeFileSync(`${trunc}.index`, t.subarray(0, 40));
    await expectLensError(readTensorBundle(trunc), 'BUNDLE_CORRUPT', /too short for a table/);
    writeFileSync(`${trunc}.index`, t.subarray(20));
    await expectLensError(readTensorBundle(trunc), 'BUNDLE_CORRUPT', /variables\.index: .*(runs past|CRC32C|magic)/);

    const missing = copy('missing');
    unlinkSync(`${missing}.data-00000-of-00001`);
    await expectLensError(readTensorBundle(missing), 'BUNDLE_CORRUPT', /data shard variables\.data-00000-of-00001 is missing/);

    const short = copy('short');
    writeFileSync(`${short}.data-00000-of-00001`, readFileSync(`${short}.data-00000-of-00001`).subarray(0, 6));
    await expectLensError(readTensorBundle(short), 'BUNDLE_CORRUPT', /entry "[bc]" spans bytes .* but variables\.data-00000-of-00001 has 6 bytes/);

    await expectLensError(readTensorBundle(join(tmp, 'nothing-here')), 'NOT_FOUND', /nothing-here\.index: file not found/);
  });
});

describe('TensorBundle writing', () => {
  const tensors: Record<string, HostTensor> = {
    'dense/kernel': { dtype: 'float32', shape: [3, 2], values: new Float32Array([1, 2, 3, 4, 5, 6]) },
    'dense/bias': { dtype: 'float64', shape: [2], values: new Float64Array([0.25, -1e-300]) },
    step: { dtype: 'int64', shape: [], values: new BigInt64Array([2n ** 40n]) },
    ids: { dtype: 'int32', shape: [4], values: new Int32Array([1, -2, 3, -4]) },
    mask: { dtype: 'bool', shape: [2], values: new Uint8Array([1, 0]) },
    bytes: { dtype: 'uint8', shape: [3], values: new Uint8Array([0, 128, 255]) },
    half: { dtype: 'float16', shape: [2], values: new Float32Array([1.5, -2]) },
    words: { dtype: 'string', shape: [3], values: ['', 'héllo', 'x'.repeat(300)].map((s) => new TextEncoder().encode(s)) },
    empty: { dtype: 'float32', shape: [0, 4], values: new Float32Array(0) },
  };

  const check = async (prefix: string) => {
    const b = await readTensorBundle(prefix);
    expect([...b.names].sort()).toEqual(Object.keys(tensors).sort());
    const all = await b.readMany();
    for (const [name, t] of Object.entries(tensors)) {
      const back = all.get(name)!;
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      if (t.dtype === 'string') expect((back.values as Uint8Array[]).map((v) => Buffer.from(v).toString())).toEqual(t.values.map((v) => Buffer.from(v).toString()));
      else expect(Array.from(back.values as ArrayLike<number | bigint>)).toEqual(Array.from(t.values as ArrayLike<number | bigint>));
    }
    return b;
  };

  it('round-trips every dtype, strings included', async () => {
    const prefix = join(tmp, 'written/variables');
    await import('node:fs').then((fs) => fs.mkdirSync(join(tmp, 'written'), { recursive: true }));
    await writeTensorBundle(prefix, tensors);
    const b = await check(prefix);
    expect(b.header).toEqual({ numShards: 1, endianness: 'little', version: { producer: 1, minConsumer: 0 } });
  });

  it('splits into several shards and reads them back', async () => {
    const prefix = join(tmp, 'sharded');
    await writeTensorBundle(prefix, new Map(Object.entries(tensors)), { maxShardBytes: 40 });
    const b = await check(prefix);
    expect(b.header.numShards).toBeGreaterThan(2);
    expect(new Set([...b.entries.values()].map((e) => e.shardId)).size).toBe(b.header.numShards);
  });

  it('writes what a reader of real TensorFlow bundles checks (masked CRCs, string layout)', async () => {
    // Rewrite a real bundle and compare the stored bytes of every tensor with the original.
    const original = await readTensorBundle(join(CNN, 'mlcommons-tiny-kws-dscnn-tf2'));
    const values = await original.readMany();
    const prefix = join(tmp, 'kws-copy');
    await writeTensorBundle(prefix, values);
    const copy = await readTensorBundle(prefix);
    for (const name of original.names) {
      expect(Buffer.from(await copy.readBytes(name)).equals(Buffer.from(await original.readBytes(name))), name).toBe(true);
      expect(copy.entries.get(name)!.crc32c).toBe(original.entries.get(name)!.crc32c);
    }
  });
});
