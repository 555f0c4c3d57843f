/**
 * The registry of op rules: TensorFlow op name -> its ONNX lowering and input-gradient rule. A new
 * op is one rule in its family file and, for a new family, one line here.
 */
import { activationRules } from './activation.js';
import { convRules } from './conv.js';
import { elementwiseRules } from './elementwise.js';
import { poolingRules } from './pooling.js';
import type { OnnxOpRule } from './rule.js';
import { shapeRules } from './shape.js';
import { structuralRules } from './structural.js';

export const OP_RULES: Readonly<Record<string, OnnxOpRule>> = {
  ...structuralRules,
  ...activationRules,
  ...convRules,
  ...poolingRules,
  ...elementwiseRules,
  ...shapeRules,
};

export type { Const, Known, OnnxOpRule, RuleContext } from './rule.js';
