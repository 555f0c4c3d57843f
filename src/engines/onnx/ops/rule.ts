/**
 * What an op rule is: how one TensorFlow op becomes ONNX. A rule emits the op's forward nodes and,
 * in the same function, records its input-gradient rule on the compiler's tape (`cc.record`), so
 * the forward lowering and the backward pass of an op are written together. Rules live by op family
 * in this folder; ops/index.ts lists them.
 */
import type { Compiler, Value } from '../compile.js';
import type { TfGraphNode, TfGraphSource } from '../graph-source.js';

/** What a tensor of the TensorFlow graph is during compilation. */
export type Known =
  /** Computed from the image: an ONNX value ([C,H,W] for NHWC 4-D tensors, [F] for 2-D). */
  | { kind: 'act'; value: Value; softmax?: boolean }
  | { kind: 'const'; data: Float32Array | Int32Array; shape: number[] }
  /** Uniform random numbers in [lo, hi) (dropout masks), of the shape of some activation. */
  | { kind: 'uniform'; lo: number; hi: number }
  /** The shape of an activation (feeds RandomUniform in dropout). */
  | { kind: 'shape' };

export type Const = Extract<Known, { kind: 'const' }>;

/** One node being compiled, with its inputs resolved on demand. */
export interface RuleContext {
  cc: Compiler;
  node: TfGraphNode;
  source: TfGraphSource;
  /** Data inputs (control inputs left out). */
  inputs: string[];
  /** Which output of the node is asked for (only IdentityN has more than output 0). */
  index: number;
  /** Throws MODEL_UNSUPPORTED naming the node, its op (and layer) and `what`. */
  fail(what: string): never;
  resolve(ref: string): Known;
  arg(i: number): Known;
  /** Input `i`, computed from the image (of the given rank with the batch). */
  act(i: number, rank?: 2 | 4): Value;
  constant(i: number): Const;
  /** Fails unless the node's data_format is NHWC (or absent). */
  nhwc(): void;
  /** [h, w] of an NHWC 4-vector attribute (strides, ksize, dilations) whose batch and channel entries are 1. */
  spatial(key: string): [number, number];
  padding(): 'same' | 'valid' | 'explicit';
  /** The node's result computed from the image (counted for reports). */
  output(value: Value, extra?: { softmax?: boolean }): Known;
}

/** The lowering of one TensorFlow op (forward nodes plus recorded input-gradient rule). */
export type OnnxOpRule = (ctx: RuleContext) => Known;

/** One rule for several ops. */
export const sameRule = (ops: readonly string[], rule: OnnxOpRule): Record<string, OnnxOpRule> => Object.fromEntries(ops.map((op) => [op, rule]));
