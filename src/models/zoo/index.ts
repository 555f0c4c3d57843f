/**
 * The model zoo: well-known pretrained models, downloaded on request from their official URLs
 * into the user's cache (checksum-verified) and built in tfjs.
 *
 * - `resnet50`: Keras Applications ResNet50 v1, ImageNet (1000 classes), caffe preprocessing,
 *   from Keras's published weights file.
 */
import { join } from 'node:path';
import { LensError } from '../../core/errors.js';
import type { ImageModel } from '../../core/model.js';
import type { PreprocessingName } from '../../core/preprocess.js';
import type { EngineInfo } from '../../engines/onnx/model.js';
import type { EngineChoice } from '../engine.js';
import { adoptExistingFile, cacheDir as defaultCacheDir, downloadFile, readDownloadRecord, type DownloadProgress, type DownloadRecord } from './download.js';

export { buildResNet50, type ResNet50, type ResNet50Options } from './resnet50.js';
export { cacheDir, downloadFile, adoptExistingFile, readDownloadRecord, type DownloadOptions, type DownloadProgress, type DownloadRecord } from './download.js';

/** One file a zoo model needs. */
export interface ZooFile {
  fileName: string;
  url: string;
  /** Published checksums: Keras publishes MD5 for its weights files. */
  md5?: string;
  sha256?: string;
}

export interface ZooModelInfo {
  id: string;
  title: string;
  classes: number;
  inputShape: readonly [number, number, number];
  preprocessing: PreprocessingName;
  /** Where the files and their checksums are published. */
  reference: string;
  files: readonly ZooFile[];
}

interface ZooBuildOptions {
  labels?: readonly string[];
  preprocessing?: PreprocessingName;
  /** Engine for forward and gradient passes (see src/engines/onnx/model.ts). */
  engine?: EngineChoice | string;
}

interface ZooEntry extends ZooModelInfo {
  build(paths: string[], options: ZooBuildOptions): Promise<ImageModel & { engine: EngineInfo }>;
}

const ZOO: readonly ZooEntry[] = [
  {
    id: 'resnet50',
    title: 'ResNet50 v1 (Keras Applications), ImageNet',
    classes: 1000,
    inputShape: [224, 224, 3],
    preprocessing: 'caffe',
    reference: 'keras.applications.ResNet50 (keras/src/applications/resnet.py: BASE_WEIGHTS_PATH, WEIGHTS_HASHES)',
    files: [
      {
        fileName: 'resnet50_weights_tf_dim_ordering_tf_kernels.h5',
        url: 'https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5',
        md5: '2cb95161c43110f7111970584f804107',
      },
    ],
    async build([weights], { labels, preprocessing, engine }) {
      const { buildResNet50 } = await import('./resnet50.js');
      const { layersImageModel } = await import('../keras.js');
      const net = await buildResNet50({ weights: weights! });
      const { imagenetLabels } = await import('../labels.js');
      return layersImageModel(net.model, { name: 'resnet50', preprocessing: preprocessing ?? 'caffe', labels: labels ?? imagenetLabels(1000), ...(engine !== undefined ? { engine } : {}) });
    },
  },
];

function entry(id: string): ZooEntry {
  const found = ZOO.find((z) => z.id === id);
  if (!found) throw new LensError('UNKNOWN_MODEL', `no zoo model "${id}"; the zoo has ${ZOO.map((z) => z.id).join(', ')}`);
  return found;
}

/** Zoo models and their files (no network). */
export function zooModels(): ZooModelInfo[] {
  return ZOO.map(({ build: _build, ...info }) => info);
}

export function isZooModel(id: string): boolean {
  return ZOO.some((z) => z.id === id);
}

/** Cache state of one zoo file. */
export interface ZooFileStatus extends ZooFile {
  path: string;
  cached: boolean;
  record?: DownloadRecord;
}

export interface ZooStatus extends ZooModelInfo {
  cached: boolean;
  fileStatus: ZooFileStatus[];
}

/**
 * Which zoo models are in the cache.
 *
 * @example
 * for (const m of zooStatus()) console.log(m.id, m.cached);
 */
export function zooStatus(options: { cacheDir?: string } = {}): ZooStatus[] {
  const dir = options.cacheDir ?? defaultCacheDir();
  return zooModels().map((info) => {
    const fileStatus = info.files.map((f): ZooFileStatus => {
      const path = join(dir, f.fileName);
      const record = readDownloadRecord(path);
      return { ...f, path, cached: record !== undefined, ...(record ? { record } : {}) };
    });
    return { ...info, cached: fileStatus.every((f) => f.cached), fileStatus };
  });
}

export interface ZooDownloadOptions {
  cacheDir?: string;
  /** Base URL of a mirror holding the same file names (or LENS_ZOO_MIRROR); checksums are still checked. */
  mirror?: string;
  onProgress?: (p: DownloadProgress & { fileName: string }) => void;
}

/**
 * Downloads a zoo model's files into the cache (no-op for files already verified there).
 *
 * @example
 * await downloadZooModel('resnet50', { onProgress: ({ received, total }) => bar.update(received) });
 */
export async function downloadZooModel(id: string, options: ZooDownloadOptions = {}): Promise<ZooFileStatus[]> {
  const z = entry(id);
  const dir = options.cacheDir ?? defaultCacheDir();
  const mirror = options.mirror ?? process.env.LENS_ZOO_MIRROR;
  const out: ZooFileStatus[] = [];
  for (const f of z.files) {
    const path = join(dir, f.fileName);
    const url = mirror ? `${mirror.replace(/\/+$/, '')}/${f.fileName}` : f.url;
    const sums = { ...(f.md5 ? { md5: f.md5 } : {}), ...(f.sha256 ? { sha256: f.sha256 } : {}) };
    const record =
      (await adoptExistingFile(path, { url: f.url, ...sums })) ??
      (await downloadFile({
        url,
        dest: path,
        ...sums,
        ...(options.onProgress ? { onProgress: (p: DownloadProgress) => options.onProgress!({ ...p, fileName: f.fileName }) } : {}),
      }));
    out.push({ ...f, path, cached: true, record });
  }
  return out;
}

/**
 * Builds a zoo model from its cached files; throws NOT_FOUND (with the download command) when
 * they are not cached. Files copied into the cache by hand are accepted when their checksums match.
 *
 * @example
 * const model = await loadZooModel('resnet50');   // after `lens models download resnet50`
 */
export async function loadZooModel(
  id: string,
  options: { cacheDir?: string } & ZooBuildOptions = {},
): Promise<ImageModel & { engine: EngineInfo }> {
  const z = entry(id);
  const dir = options.cacheDir ?? defaultCacheDir();
  const paths: string[] = [];
  for (const f of z.files) {
    const path = join(dir, f.fileName);
    const record = await adoptExistingFile(path, { url: f.url, ...(f.md5 ? { md5: f.md5 } : {}), ...(f.sha256 ? { sha256: f.sha256 } : {}) });
    if (!record) {
      throw new LensError('NOT_FOUND', `zoo model ${id} needs ${f.fileName}, which is not in the cache (${dir}); run: lens models download ${id}`);
    }
    paths.push(path);
  }
  return z.build(paths, options);
}
