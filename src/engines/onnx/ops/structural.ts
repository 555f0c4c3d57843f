/**
 * Graph plumbing: constants (the weights), the image input, identities, float-to-float casts, and
 * the shapes and random numbers of TF1 dropout (folded away at keep probability 1, see
 * elementwise.ts). None of them emits ONNX nodes.
 */
import { constantValue } from '../graph-source.js';
import { sameRule, type OnnxOpRule } from './rule.js';

export const structuralRules: Record<string, OnnxOpRule> = {
  Const: ({ node, source, fail }) => {
    const t = constantValue(source, node.name) ?? fail('has no value among the weights');
    if (t.dtype !== 'float32' && t.dtype !== 'int32') return fail(`holds ${t.dtype} values`);
    return { kind: 'const', data: t.data, shape: t.shape };
  },
  Placeholder: ({ source, fail }) => fail(`is a graph input other than the image ${source.input}`),
  IdentityN: ({ inputs, index, resolve, fail }) => resolve(inputs[index] ?? fail(`has no input ${index}`)),
  ...sameRule(['Identity', 'Snapshot', 'PlaceholderWithDefault'], ({ arg }) => arg(0)),
  Cast: ({ node, arg, fail }) => {
    const from = node.attr?.SrcT?.type;
    const to = node.attr?.DstT?.type;
    if (from !== 'DT_FLOAT' || to !== 'DT_FLOAT') return fail(`casts ${String(from)} to ${String(to)} (only float to float)`);
    return arg(0);
  },
  Shape: ({ arg }) => {
    const k = arg(0);
    return k.kind === 'const' ? { kind: 'const', data: Int32Array.from(k.shape), shape: [k.shape.length] } : { kind: 'shape' };
  },
  RandomUniform: () => ({ kind: 'uniform', lo: 0, hi: 1 }),
};
