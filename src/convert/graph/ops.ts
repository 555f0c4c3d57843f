/**
 * Which TensorFlow ops the converted graphs can run: the ops @tensorflow/tfjs-converter maps,
 * plus kernels registered here with {@link registerGraphOp} (e.g. image decoding for models
 * that take encoded JPEGs), plus the variable ops serving-lens adds for stateful TF1 models.
 *
 * @example
 * registerGraphOp('DecodeJpeg', (node) => decodeJpegToTensor(node.inputs[0]!));
 * supportsOp('DecodeJpeg'); // true
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { deregisterOp, registerOp, type GraphNode, type OpExecutor } from '@tensorflow/tfjs-converter';
import { LensError } from '../../core/errors.js';

/** A kernel for a graph op: gets the node's input tensors and attrs, returns its outputs. */
export type GraphOpKernel = (node: GraphNode) => tf.Tensor | tf.Tensor[] | Promise<tf.Tensor | tf.Tensor[]>;

const customOps = new Set<string>();
let builtin: Map<string, string> | undefined;

/**
 * Ops the installed @tensorflow/tfjs-converter maps to kernels, with their category (the op
 * table file: "control", "dynamic", "arithmetic", ...), read from its op tables (the package
 * exports no list). Read once.
 */
export function tfjsConverterOps(): ReadonlyMap<string, string> {
  if (builtin) return builtin;
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@tensorflow/tfjs-converter/package.json')), 'dist', 'operations', 'op_list');
  const ops = new Map<string, string>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.js')) continue;
    const category = file.slice(0, -'.js'.length);
    for (const m of readFileSync(join(dir, file), 'utf8').matchAll(/tfOpName['"]?\s*:\s*['"]([A-Za-z0-9_]+)['"]/g)) ops.set(m[1]!, category);
  }
  if (ops.size < 100) throw new LensError('INTERNAL', `could not read the op list of @tensorflow/tfjs-converter from ${dir}`);
  builtin = ops;
  return ops;
}

/** Op categories whose tfjs kernels need GraphModel.executeAsync (control flow, data-dependent shapes, tables). */
const ASYNC_CATEGORIES = new Set(['control', 'dynamic', 'hash_table']);

/**
 * True when a graph with these ops must run with executeAsync: control flow, dynamic shapes,
 * hash tables, or kernels added with registerGraphOp (which may return promises).
 */
export function needsAsyncExecution(ops: Iterable<string>): boolean {
  const table = tfjsConverterOps();
  for (const op of ops) {
    if (customOps.has(op) || ASYNC_CATEGORIES.has(table.get(op) ?? '')) return true;
  }
  return false;
}

/**
 * Registers (or replaces) the kernel of a TensorFlow op for every converted graph, through
 * tfjs-converter's custom-op registry. Ops TensorFlow.js lacks (DecodeJpeg, ParseExample, ...)
 * then convert and run instead of failing with UNSUPPORTED_OP.
 *
 * @example
 * registerGraphOp('DecodeJpeg', (node) => myDecode(node.inputs[0]!, node.attrs['channels'] as number));
 */
export function registerGraphOp(name: string, kernel: GraphOpKernel): void {
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new LensError('INVALID_ARGUMENT', `"${name}" is not a TensorFlow op name`);
  registerOp(name, kernel as OpExecutor);
  customOps.add(name);
}

/** Removes a kernel added with {@link registerGraphOp}. */
export function unregisterGraphOp(name: string): void {
  deregisterOp(name);
  customOps.delete(name);
}

/** True when converted graphs can run `op` (tfjs kernel, registered kernel, or serving-lens op). */
export function supportsOp(op: string): boolean {
  return customOps.has(op) || STATE_OPS.has(op) || tfjsConverterOps().has(op);
}

// ---------------------------------------------------------------------------------------------
// Variables that graphs assign to (TF1 counters and the like), kept per loaded model.

/** Reads a stateful variable: attrs lens_store (store id) and lens_var (variable index). */
export const READ_VARIABLE_OP = 'LensReadVariable';
/** Assigns to a stateful variable (attr lens_mode 0 set, 1 add, 2 sub) and returns the new value. */
export const ASSIGN_VARIABLE_OP = 'LensAssignVariable';
/**
 * GatherV2 of a string tensor (tfjs gathers numbers only), e.g. the class-name table of exported
 * models: the converter emits it for GatherV2 nodes whose Tparams is DT_STRING.
 */
export const GATHER_STRINGS_OP = 'LensGatherStrings';
const STATE_OPS = new Set([READ_VARIABLE_OP, ASSIGN_VARIABLE_OP, GATHER_STRINGS_OP]);

/** Mutable variables of one loaded graph, read and written by the two ops above. */
export class VariableStore {
  private static nextId = 1;
  private static readonly stores = new Map<number, VariableStore>();
  readonly id = VariableStore.nextId++;
  private readonly values: tf.Tensor[] = [];
  readonly names: string[] = [];

  constructor() {
    VariableStore.stores.set(this.id, this);
  }

  static get(id: number): VariableStore {
    const s = VariableStore.stores.get(id);
    if (!s) throw new LensError('INTERNAL', `variable store ${id} was disposed while its graph still runs`);
    return s;
  }

  /** Index of variable `name`, adding it with the value `initial()` returns when new (the store keeps a copy). */
  ensure(name: string, initial: () => tf.Tensor): number {
    const known = this.names.indexOf(name);
    if (known >= 0) return known;
    const t = initial();
    this.names.push(name);
    this.values.push(tf.keep(t.clone()));
    t.dispose();
    return this.values.length - 1;
  }

  read(index: number): tf.Tensor {
    const v = this.values[index];
    if (!v) throw new LensError('INTERNAL', `variable store ${this.id} has no variable ${index}`);
    return v;
  }

  assign(index: number, mode: number, value: tf.Tensor): tf.Tensor {
    const old = this.read(index);
    const next = tf.keep(mode === 1 ? tf.add(old, value) : mode === 2 ? tf.sub(old, value) : tf.cast(value, old.dtype));
    if (!tf.util.arraysEqual(next.shape, old.shape)) {
      next.dispose();
      throw new LensError('SHAPE_MISMATCH', `cannot assign shape [${value.shape.join(',')}] to variable "${this.names[index]}" of shape [${old.shape.join(',')}]`);
    }
    this.values[index] = next;
    old.dispose();
    return next;
  }

  /** Current values by variable name (copies; the caller disposes them). */
  snapshot(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.names.map((n, i) => [n, this.values[i]!.clone()]));
  }

  dispose(): void {
    tf.dispose(this.values);
    this.values.length = 0;
    VariableStore.stores.delete(this.id);
  }
}

registerOp(READ_VARIABLE_OP, ((node: GraphNode) => {
  const store = VariableStore.get(node.attrs['lens_store'] as number);
  // A clone: the executor disposes op outputs it no longer needs, never the stored value.
  return store.read(node.attrs['lens_var'] as number).clone();
}) as OpExecutor);

registerOp(ASSIGN_VARIABLE_OP, ((node: GraphNode) => {
  const store = VariableStore.get(node.attrs['lens_store'] as number);
  const value = node.inputs[1];
  if (!value) throw new LensError('INTERNAL', 'variable assignment without a value input');
  return store.assign(node.attrs['lens_var'] as number, node.attrs['lens_mode'] as number, value).clone();
}) as OpExecutor);

registerOp(GATHER_STRINGS_OP, ((node: GraphNode) => {
  const [params, indices, axis] = node.inputs;
  if (!params || !indices) throw new LensError('INTERNAL', 'string gather without params or indices');
  const at = axis ? axis.dataSync()[0]! : 0;
  if (at !== 0 || params.rank !== 1) {
    throw new LensError('UNSUPPORTED', `GatherV2 of strings is supported on a 1-D table along axis 0, got [${params.shape.join(',')}] along axis ${at}`);
  }
  // Synchronous (so graphs that gather names need no executeAsync); readSync gives the raw bytes.
  const table = tf.backend().readSync(params.dataId) as Uint8Array[];
  const picks = Array.from(indices.dataSync(), (i) => {
    const v = table[i];
    if (v === undefined) throw new LensError('INVALID_ARGUMENT', `indices = ${i} is not in [0, ${table.length})`);
    return v;
  });
  return tf.tensor(picks, indices.shape, 'string');
}) as OpExecutor);
