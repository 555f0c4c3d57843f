/**
 * AttrValue messages from plain values, driven by the attr's declared type in the op table, and
 * the reverse checks the graph checker needs (which oneof member an AttrValue sets, equality).
 */
import { LensError } from '../core/errors.js';
import { attrKind, type AttrValueMessage } from '../savedmodel/savedmodel.js';
import { baseDataType, dataTypeName, type TensorProtoMessage } from '../tensor/index.js';
import type { AttrFactValue, AttrType, OpAttrFact } from './op-defs.js';

/** A value a caller gives for an attr: DataType names for types, dims (-1 unknown) or null (unknown rank) for shapes. */
export type AttrInput = string | number | boolean | readonly number[] | readonly string[] | null | TensorProtoMessage | ShapeInput;

/** A shape attr: dims with -1 for unknown sizes, or unknownRank. */
export type ShapeInput = { dims: readonly number[] } | { unknownRank: true };

const utf8 = new TextEncoder();

/** TensorShapeProto object for dims (-1 = unknown) or an unknown rank. */
export function shapeProto(shape: readonly number[] | null): NonNullable<TensorProtoMessage['tensor_shape']> {
  if (shape === null) return { unknown_rank: true };
  return { dim: shape.map((size) => ({ size })) };
}

function shapeOf(value: unknown, where: string): NonNullable<TensorProtoMessage['tensor_shape']> {
  if (value === null) return shapeProto(null);
  if (Array.isArray(value)) return shapeProto(value as number[]);
  if (typeof value === 'object' && value !== null) {
    if ('unknownRank' in value) return shapeProto(null);
    if ('dims' in value) return shapeProto((value as { dims: readonly number[] }).dims);
  }
  throw new LensError('INTERNAL', `${where}: ${JSON.stringify(value)} is not a shape`);
}

function dataType(value: unknown, where: string): number {
  if (typeof value !== 'string' && typeof value !== 'number') throw new LensError('INTERNAL', `${where}: ${String(value)} is not a DataType`);
  return baseDataType(value);
}

/**
 * The AttrValue for `value` as an attr of declared type `type`.
 *
 * @example
 * attrValueOf('list(int)', [1, 2, 2, 1], 'Conv2D.strides'); // { list: { i: [1, 2, 2, 1] } }
 */
export function attrValueOf(type: AttrType, value: AttrInput | AttrFactValue, where: string): AttrValueMessage {
  const bad = (): never => {
    throw new LensError('INTERNAL', `${where}: ${JSON.stringify(value)} is not a valid ${type} attr value`);
  };
  switch (type) {
    case 'type':
      return { type: dataType(value, where) };
    case 'list(type)':
      if (!Array.isArray(value)) return bad();
      return { list: { type: (value as unknown[]).map((v) => dataType(v, where)) } };
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) return bad();
      return { i: value };
    case 'list(int)':
      if (!Array.isArray(value) || !(value as unknown[]).every((v) => Number.isInteger(v))) return bad();
      return { list: { i: [...(value as number[])] } };
    case 'float':
      if (typeof value !== 'number') return bad();
      return { f: value };
    case 'bool':
      if (typeof value !== 'boolean') return bad();
      return { b: value };
    case 'string':
      if (typeof value !== 'string') return bad();
      return { s: utf8.encode(value) };
    case 'shape':
      return { shape: shapeOf(value, where) };
    case 'tensor':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad();
      return { tensor: value as TensorProtoMessage };
  }
}

/** The default of an attr as an AttrValue, or undefined when it has none. */
export function defaultAttrValue(fact: OpAttrFact, op: string): AttrValueMessage | undefined {
  return fact.default === undefined ? undefined : attrValueOf(fact.type, fact.default, `${op}.${fact.name} default`);
}

/** The member an attr of `type` must set: scalars their field, all list types "list". */
export function expectedKind(type: AttrType): string {
  if (type.startsWith('list(')) return 'list';
  const scalar: Record<string, string> = { type: 'type', int: 'i', float: 'f', bool: 'b', string: 's', shape: 'shape', tensor: 'tensor' };
  return scalar[type] ?? type;
}

/** The element list of a list attr for its declared element type. */
export function listItems(a: AttrValueMessage, type: AttrType): unknown[] {
  const l = a.list ?? {};
  switch (type) {
    case 'list(int)':
      return [...(l.i ?? [])];
    case 'list(type)':
      return [...(l.type ?? [])];
    default:
      return [];
  }
}

function canonical(a: AttrValueMessage): unknown {
  const kind = attrKind(a);
  switch (kind) {
    case 's':
      return ['s', Buffer.from(a.s ?? new Uint8Array()).toString('hex')];
    case 'i':
      return ['i', Number(a.i)];
    case 'f':
      return ['f', Math.fround(Number(a.f))];
    case 'b':
      return ['b', Boolean(a.b)];
    case 'type':
      return ['type', baseDataType(a.type ?? 0)];
    case 'shape': {
      const s = a.shape;
      return ['shape', s?.unknown_rank ? 'unknown' : (s?.dim ?? []).map((d) => Number(d.size ?? 0))];
    }
    case 'list': {
      const l = a.list ?? {};
      return ['list', (l.i ?? []).map(Number), (l.type ?? []).map((t) => baseDataType(t)), (l.s ?? []).map((s) => Buffer.from(s).toString('hex')), [...(l.f ?? [])], [...(l.b ?? [])]];
    }
    default:
      return [kind];
  }
}

/** True when two AttrValues hold the same value (used to leave defaults out). */
export function sameAttrValue(a: AttrValueMessage, b: AttrValueMessage): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Human form of an AttrValue for error messages. */
export function describeAttr(a: AttrValueMessage): string {
  const kind = attrKind(a);
  if (kind === 'type') return dataTypeName(baseDataType(a.type ?? 0));
  if (kind === 's') return JSON.stringify(Buffer.from(a.s ?? new Uint8Array()).toString('utf8'));
  return JSON.stringify(canonical(a));
}
