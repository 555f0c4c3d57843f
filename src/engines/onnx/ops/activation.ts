/**
 * Elementwise activations: Relu, Relu6, Sigmoid, Tanh, LeakyRelu, Elu, Softplus, Softmax. Each
 * backward rule reads the saved input or output (ReLU's a select on the output, sigmoid's y(1-y)).
 */
import { unsupported, type Compiler, type Value } from '../compile.js';
import { sameRule, type OnnxOpRule } from './rule.js';

/** TensorFlow activation ops (also as tfjs-converter fused ops) -> {@link activation} kinds. */
export const ACTIVATIONS: Record<string, string> = { Relu: 'relu', Relu6: 'relu6', Sigmoid: 'sigmoid', Tanh: 'tanh', LeakyRelu: 'leakyRelu', Elu: 'elu', Softplus: 'softplus' };

/**
 * An elementwise activation by its tfjs-layers name (TensorFlow ops map to these). `alpha` is
 * LeakyReLU's negative slope (default 0.2, as TensorFlow's op) or ELU's scale (default 1).
 */
export function activation(cc: Compiler, kind: string, x: Value, hint: string, alpha?: number): Value {
  const g = cc.g;
  switch (kind) {
    case 'leakyRelu': {
      const slope = alpha ?? 0.2;
      const y: Value = { name: g.op('LeakyRelu', [x.name], { alpha: { f: slope } }, hint), shape: x.shape };
      return cc.record([x], y, (grad) => [g.op('Where', [g.op('Greater', [x.name, cc.zeroScalar()]), grad, g.op('Mul', [grad, g.scalar(`${hint}_alpha`, slope)])], {}, `${hint}_grad`)]);
    }
    case 'elu': {
      // dy/dx = 1 for x > 0, alpha e^x = y + alpha below.
      const scale = alpha ?? 1;
      const y: Value = { name: g.op('Elu', [x.name], { alpha: { f: scale } }, hint), shape: x.shape };
      return cc.record([x], y, (grad) => {
        const below = g.op('Mul', [grad, g.op('Add', [y.name, g.scalar(`${hint}_alpha`, scale)])]);
        return [g.op('Where', [g.op('Greater', [x.name, cc.zeroScalar()]), grad, below], {}, `${hint}_grad`)];
      });
    }
    case 'softplus': {
      const y: Value = { name: g.op('Softplus', [x.name], {}, hint), shape: x.shape };
      return cc.record([x], y, (grad) => [g.op('Mul', [grad, g.op('Sigmoid', [x.name])], {}, `${hint}_grad`)]);
    }
    case 'relu': {
      const y: Value = { name: g.op('Relu', [x.name], {}, hint), shape: x.shape };
      return cc.record([x], y, (grad) => [g.op('Where', [g.op('Greater', [y.name, cc.zeroScalar()]), grad, cc.zeroScalar()], {}, `${hint}_grad`)]);
    }
    case 'relu6': {
      const six = g.scalar('six', 6);
      const y: Value = { name: g.op('Clip', [x.name, cc.zeroScalar(), six], {}, hint), shape: x.shape };
      return cc.record([x], y, (grad) => {
        const inside = g.op('And', [g.op('Greater', [y.name, cc.zeroScalar()]), g.op('Less', [y.name, six])]);
        return [g.op('Where', [inside, grad, cc.zeroScalar()], {}, `${hint}_grad`)];
      });
    }
    case 'sigmoid': {
      const y: Value = { name: g.op('Sigmoid', [x.name], {}, hint), shape: x.shape };
      return cc.record([x], y, (grad) => {
        const one = g.scalar('one', 1);
        return [g.op('Mul', [grad, g.op('Mul', [y.name, g.op('Sub', [one, y.name])])], {}, `${hint}_grad`)];
      });
    }
    case 'tanh': {
      const y: Value = { name: g.op('Tanh', [x.name], {}, hint), shape: x.shape };
      return cc.record([x], y, (grad) => {
        const one = g.scalar('one', 1);
        return [g.op('Mul', [grad, g.op('Sub', [one, g.op('Mul', [y.name, y.name])])], {}, `${hint}_grad`)];
      });
    }
    case 'softmax': {
      if (x.shape.length !== 1) unsupported(cc.modelName, `softmax over a ${x.shape.length + 1}-D tensor (${hint})`);
      const y: Value = { name: g.op('Softmax', [x.name], { axis: { i: 1 } }, hint), shape: x.shape };
      return cc.record([x], y, (grad) => {
        // dx = y * (g - sum(g * y))
        const dot = g.op('ReduceSum', [g.op('Mul', [grad, y.name]), g.ints('axis1', [1])], { keepdims: { i: 1 } });
        return [g.op('Mul', [y.name, g.op('Sub', [grad, dot])], {}, `${hint}_grad`)];
      });
    }
    default:
      return unsupported(cc.modelName, `activation "${kind}" (${hint}) has no backward rule here`);
  }
}

export const activationRules: Record<string, OnnxOpRule> = {
  ...sameRule(Object.keys(ACTIVATIONS), ({ cc, node, act, output }) => output(activation(cc, ACTIVATIONS[node.op]!, act(0), node.name, node.attr?.alpha?.f))),
  Softmax: ({ cc, node, act, output }) => output(activation(cc, 'softmax', act(0, 2), node.name), { softmax: true }),
};
