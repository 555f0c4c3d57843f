/**
 * Assembling and writing a TF1-style SavedModel: the MetaGraphDef (graph, Saver, collections,
 * signatures, `stripped_op_list` with the op definitions used), `saved_model.pb`, the variables
 * TensorBundle and a lens.json sidecar, written into a temporary folder beside
 * `<base>/<version>` and renamed into place, so TensorFlow Serving (which polls the base path)
 * never sees a half-written version, and a kill at any moment leaves a complete version.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LensError, errorMessage } from '../core/errors.js';
import { isStaleTag, refuseSymlink, syncDir, syncTree, tempTag, trackTemp } from '../fs/atomic.js';
import { faultPoint } from '../fs/fault.js';
import { encodeMessage } from '../proto/index.js';
import { writeTensorBundle } from '../savedmodel/bundle.js';
import type { AttrValueMessage } from '../savedmodel/savedmodel.js';
import { baseDataType } from '../tensor/index.js';
import { attrValueOf, shapeProto } from '../graph/attrs.js';
import type { GraphBuilder } from '../graph/builder.js';
import { opDef, type OpArgFact, type OpDefFact } from '../graph/op-defs.js';
import type { SaverDefMessage, VariableSet } from '../graph/variables.js';

/** The GraphDef version written (TensorFlow 2.14's producer and min_consumer, as in real exports). */
export const GRAPH_VERSIONS = { producer: 1569, min_consumer: 12 } as const;
/** The TensorFlow version recorded in meta_info_def (the release whose GraphDef version is used). */
export const TENSORFLOW_VERSION = '2.14.0';
export const PREDICT_METHOD_NAME = 'tensorflow/serving/predict';

/** One tensor of a signature. */
export interface SignatureTensorSpec {
  /** Node name ("x") or tensor name ("x:1"). */
  tensor: string;
  /** DataType name, e.g. "DT_FLOAT". */
  dtype: string;
  /** Dims with -1 for unknown sizes; null for an unknown rank. */
  shape: readonly number[] | null;
}

export interface SignatureSpecForExport {
  inputs: Record<string, SignatureTensorSpec>;
  outputs: Record<string, SignatureTensorSpec>;
  methodName?: string;
}

function argMessage(arg: OpArgFact): Record<string, unknown> {
  return {
    name: arg.name,
    ...(arg.type ? { type: baseDataType(arg.type) } : {}),
    ...(arg.typeAttr ? { type_attr: arg.typeAttr } : {}),
    ...(arg.numberAttr ? { number_attr: arg.numberAttr } : {}),
    ...(arg.typeListAttr ? { type_list_attr: arg.typeListAttr } : {}),
    ...(arg.isRef ? { is_ref: true } : {}),
  };
}

/** An OpDef message (op_def.proto) from the op table. */
export function opDefMessage(def: OpDefFact): Record<string, unknown> {
  return {
    name: def.name,
    input_arg: def.inputs.map(argMessage),
    output_arg: def.outputs.map(argMessage),
    attr: def.attrs.map((a) => {
      let allowed: AttrValueMessage | undefined;
      if (a.allowed) {
        allowed = a.type === 'type' ? { list: { type: a.allowed.map((t) => baseDataType(t)) } } : { list: { s: a.allowed.map((s) => new TextEncoder().encode(s)) } };
      }
      return {
        name: a.name,
        type: a.type,
        ...(a.default !== undefined ? { default_value: attrValueOf(a.type, a.default, `${def.name}.${a.name}`) } : {}),
        ...(a.minimum !== undefined ? { has_minimum: true, minimum: a.minimum } : {}),
        ...(allowed ? { allowed_values: allowed } : {}),
      };
    }),
    ...(def.isStateful ? { is_stateful: true } : {}),
    ...(def.isCommutative ? { is_commutative: true } : {}),
    ...(def.isAggregate ? { is_aggregate: true } : {}),
    ...(def.allowsUninitializedInput ? { allows_uninitialized_input: true } : {}),
  };
}

function tensorInfo(t: SignatureTensorSpec): Record<string, unknown> {
  return { name: /:\d+$/.test(t.tensor) ? t.tensor : `${t.tensor}:0`, dtype: baseDataType(t.dtype), tensor_shape: shapeProto(t.shape) };
}

/**
 * The MetaGraphDef of an exported graph, tagged "serve".
 *
 * @example
 * const mg = buildMetaGraph(g, vars, vars.addSaver(g), { serving_default: sig });
 */
export function buildMetaGraph(g: GraphBuilder, variables: VariableSet, saverDef: SaverDefMessage, signatures: Record<string, SignatureSpecForExport>, gitVersion: string): Record<string, unknown> {
  const ops = [...g.opsUsed].sort();
  const collections: Record<string, unknown> = {};
  if (variables.list.length > 0) {
    collections.variables = variables.collection();
    collections.trainable_variables = variables.collection();
  }
  return {
    meta_info_def: {
      stripped_op_list: { op: ops.map((name) => opDefMessage(opDef(name))) },
      tags: ['serve'],
      tensorflow_version: TENSORFLOW_VERSION,
      tensorflow_git_version: gitVersion,
      stripped_default_attrs: true,
    },
    graph_def: { node: g.nodes, versions: { ...GRAPH_VERSIONS } },
    saver_def: saverDef,
    collection_def: collections,
    signature_def: Object.fromEntries(
      Object.entries(signatures).map(([key, sig]) => [
        key,
        {
          inputs: Object.fromEntries(Object.entries(sig.inputs).map(([alias, t]) => [alias, tensorInfo(t)])),
          outputs: Object.fromEntries(Object.entries(sig.outputs).map(([alias, t]) => [alias, tensorInfo(t)])),
          method_name: sig.methodName ?? PREDICT_METHOD_NAME,
        },
      ]),
    ),
  };
}

/** Bytes of saved_model.pb for one MetaGraph. */
export function encodeSavedModel(metaGraph: Record<string, unknown>): Uint8Array {
  return encodeMessage('tensorflow.SavedModel', { saved_model_schema_version: 1, meta_graphs: [metaGraph] });
}

/** What {@link writeVersionDir} wrote. */
export interface WrittenVersion {
  dir: string;
  savedModelBytes: number;
  variablesBytes: number;
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** What {@link recoverVersionLeftovers} did to one leftover folder. */
export interface RecoveredLeftover {
  /** The leftover folder, e.g. `<base>/.1.old-123-host-9f00aa11`. */
  path: string;
  action: 'restored' | 'removed';
  version: number;
}

const LEFTOVER = /^\.(\d+)\.(tmp|old)-(.+)$/;

/**
 * Repairs what killed exports left in `base`: a version moved aside (`.N.old-*`) whose
 * replacement never arrived is moved back to `N`; other leftovers of dead writers (`.N.tmp-*`,
 * `.N.old-*` once `N` exists) are removed. Leftovers of a live export are left alone.
 *
 * @example
 * for (const r of await recoverVersionLeftovers('/models/resnet')) console.error(`${r.action} ${r.path}`);
 */
export async function recoverVersionLeftovers(base: string): Promise<RecoveredLeftover[]> {
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return [];
  }
  const done: RecoveredLeftover[] = [];
  const leftovers = [];
  for (const name of names) {
    const m = LEFTOVER.exec(name);
    if (!m) continue;
    const path = join(base, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isDirectory() || !isStaleTag(m[3]!, st.mtimeMs)) continue;
    leftovers.push({ path, version: Number(m[1]), kind: m[2] as 'tmp' | 'old', mtimeMs: st.mtimeMs });
  }
  // The newest old version goes back first; restoring makes the others plain garbage.
  leftovers.sort((x, y) => (x.kind === y.kind ? y.mtimeMs - x.mtimeMs : x.kind === 'old' ? -1 : 1));
  for (const l of leftovers) {
    const finalDir = join(base, String(l.version));
    if (l.kind === 'old' && !existsSync(finalDir)) {
      await rename(l.path, finalDir);
      done.push({ path: l.path, action: 'restored', version: l.version });
    } else {
      await rm(l.path, { recursive: true, force: true });
      done.push({ path: l.path, action: 'removed', version: l.version });
    }
  }
  if (done.length > 0) await syncDir(base);
  return done;
}

/**
 * Writes `<base>/<version>/` (saved_model.pb, variables/, lens.json) atomically: everything goes
 * to a fresh `<base>/.<version>.tmp-*` folder, every file and folder is fsynced, and one rename
 * puts it in place. An existing version is refused unless `force`. Linux cannot exchange two
 * non-empty folders with a plain rename, so a forced replacement moves the old version aside
 * (`.<version>.old-*`) right before that rename and deletes it after; a kill between the two
 * renames is repaired by the next export ({@link recoverVersionLeftovers}), which puts the old
 * version back, so `<base>/<version>` is always either the old or the new complete version.
 */
export async function writeVersionDir(
  base: string,
  version: number,
  content: { savedModel: Uint8Array; variables: VariableSet; sidecar: Record<string, unknown> },
  force: boolean,
): Promise<WrittenVersion> {
  const finalDir = join(base, String(version));
  await recoverVersionLeftovers(base);
  if (existsSync(finalDir) && !force) {
    throw new LensError('INVALID_ARGUMENT', `${finalDir} already exists; choose another --version or pass --force to replace it`);
  }
  const tag = tempTag();
  const tmp = join(base, `.${version}.tmp-${tag}`);
  const untrack = trackTemp(tmp);
  try {
    await mkdir(base, { recursive: true });
    // Not recursive: the folder must be new, so nothing inside it can be a planted link.
    await mkdir(tmp);
    await mkdir(join(tmp, 'variables'));
    await writeFile(join(tmp, 'saved_model.pb'), content.savedModel, { flag: 'wx' });
    await writeTensorBundle(join(tmp, 'variables', 'variables'), new Map(content.variables.list.map((v) => [v.name, v.value])));
    await writeFile(join(tmp, 'lens.json'), `${JSON.stringify(content.sidecar, null, 2)}\n`, { flag: 'wx' });
    const variablesBytes = (await sizeOf(join(tmp, 'variables', 'variables.index'))) + (await sizeOf(join(tmp, 'variables', 'variables.data-00000-of-00001')));
    await syncTree(tmp);
    await faultPoint('export:written');
    await refuseSymlink(finalDir);
    if (existsSync(finalDir)) {
      const old = join(base, `.${version}.old-${tag}`);
      await rename(finalDir, old);
      await faultPoint('export:old-aside');
      await rename(tmp, finalDir);
      untrack();
      await syncDir(base);
      await faultPoint('export:new-in-place');
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, finalDir);
      untrack();
      await syncDir(base);
    }
    return { dir: finalDir, savedModelBytes: content.savedModel.length, variablesBytes };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    untrack();
    if (e instanceof LensError) throw e;
    throw new LensError('WRITE_FAILED', `cannot write SavedModel ${finalDir}: ${errorMessage(e)}`, { cause: e });
  }
}
