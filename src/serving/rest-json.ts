/**
 * Tensors and examples in TF Serving's REST JSON, both directions:
 * - server side: `instances` (row) / `inputs` (columnar) request values -> host tensors typed by the
 *   signature, with the real server's validation messages; outputs -> `predictions` / `outputs`;
 *   classify/regress `examples` + `context` -> tf.Example messages; results -> `results`.
 * - client side: host tensors -> request JSON; reply JSON -> host tensors.
 *
 * Strings are UTF-8 text or `{"b64": "..."}`; outputs whose alias ends in "_bytes" are written as b64.
 *
 * @example
 * const { inputs, format } = predictInputsFromJson(body, signature);
 * const text = predictReplyJson(outputs, format);
 */
import { allocateValues, dtypeOfDataType, type HostDType, type HostTensor, type HostValues, type TensorDecodeLimits } from '../tensor/index.js';
import type { ExampleMessage, FeatureMessage } from './core.js';
import { formatFloat, isJsonList, JsonNumber, NumberBlock } from './json.js';
import { tfDtypeString } from './servable.js';
import type { SignatureSpec, TensorSpec } from './signature.js';
import { ServingError } from './status.js';

export type JsonFormat = 'row' | 'columnar';

const invalid = (message: string) => new ServingError('INVALID_ARGUMENT', message);

/** Characters of a request value that an error message quotes at most. */
export const QUOTE_LIMIT = 256;

/**
 * A JSON value rendered for error messages, as the real server quotes request values, cut after
 * `limit` characters (with "...") so that a reply never echoes a large request.
 */
export function jsonValueString(v: unknown, limit = QUOTE_LIMIT): string {
  const out: string[] = [];
  let length = 0;
  const put = (text: string): boolean => {
    out.push(text.length > limit - length ? text.slice(0, Math.max(0, limit - length)) : text);
    length += text.length;
    return length < limit;
  };
  // Returns false once the budget is spent (the walk stops, so depth is bounded by the budget too).
  const walk = (x: unknown): boolean => {
    if (x instanceof JsonNumber) return put(x.text);
    if (typeof x === 'number') return put(Number.isFinite(x) ? String(x) : formatFloat(x, 'float64'));
    if (x instanceof NumberBlock) {
      if (!put('[')) return false;
      for (let i = 0; i < x.shape[0]!; i++) if ((i > 0 && !put(',')) || !walk(x.item(i))) return false;
      return put(']');
    }
    if (Array.isArray(x)) {
      if (!put('[')) return false;
      for (let i = 0; i < x.length; i++) if ((i > 0 && !put(',')) || !walk(x[i])) return false;
      return put(']');
    }
    if (x !== null && typeof x === 'object') {
      if (!put('{')) return false;
      let first = true;
      for (const k in x) {
        if (!Object.hasOwn(x, k)) continue;
        if ((!first && !put(',')) || !put(`${JSON.stringify(k.length > limit ? k.slice(0, limit) : k)}:`) || !walk((x as Record<string, unknown>)[k])) return false;
        first = false;
      }
      return put('}');
    }
    return put(typeof x === 'string' ? JSON.stringify(x.length > limit ? x.slice(0, limit) : x) : (JSON.stringify(x) ?? 'null'));
  };
  return walk(v) ? out.join('') : `${out.join('')}...`;
}

function jsonTypeString(v: unknown): string {
  if (v === null) return 'Null';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (isJsonList(v)) return 'Array';
  if (typeof v === 'string') return 'String';
  if (typeof v === 'number' || v instanceof JsonNumber) return 'Number';
  return 'Object';
}

function isB64Object(v: unknown): v is { b64: string } {
  return v !== null && typeof v === 'object' && !isJsonList(v) && !(v instanceof JsonNumber) && Object.keys(v).length === 1 && typeof (v as { b64?: unknown }).b64 === 'string';
}

function decodeB64(v: unknown): Uint8Array {
  if (!isB64Object(v)) throw invalid(`JSON Value: ${jsonValueString(v)} not formatted correctly for base64 data`);
  const s = v.b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/\-_]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) throw invalid('Unable to base64 decode');
  return Buffer.from(s, s.includes('-') || s.includes('_') ? 'base64url' : 'base64');
}

const FLOAT32_MAX_INT = 2 ** 24 - 1;
const FLOAT32_MAX = 3.4028234663852886e38;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Bounds on the string tensors a request may build (see TensorDecodeLimits). */
export type StringLimits = Pick<TensorDecodeLimits, 'maxStringElements' | 'maxStringBytes'>;

/** The most dimensions a TensorFlow tensor can have (TensorShape's limit). */
const MAX_RANK = 254;

type NumericValues = Exclude<HostValues, Uint8Array[]>;

/** Values of one tensor being filled from JSON, typed by the signature dtype, in a typed array. */
class Filler {
  readonly strs: Uint8Array[] = [];
  private values: NumericValues | null = null;
  private length = 0;
  private stringBytes = 0;
  private readonly enc = new TextEncoder();

  constructor(
    readonly dtype: HostDType,
    readonly tfName: string,
    private readonly limits: StringLimits = {},
    /** Reading a server's reply: its floats are what they are (the lossless checks are for requests). */
    private readonly fromReply = false,
  ) {}

  /** Makes room for `n` more numbers. */
  reserve(n: number): void {
    if (this.dtype === 'string') return;
    const need = this.length + n;
    if (this.values && need <= this.values.length) return;
    const grown = allocateValues(this.dtype, Math.max(need, 2 * (this.values?.length ?? 0), 16)) as NumericValues;
    if (this.values) (grown as Float64Array).set((this.values as Float64Array).subarray(0, this.length));
    this.values = grown;
  }

  private push(v: number | bigint): void {
    if (!this.values || this.length === this.values.length) this.reserve(1);
    this.values![this.length++] = v as never;
  }

  /** Adds one value; `wholeDouble` when a number block says it was written as a whole-valued double. */
  add(v: unknown, wholeDouble = false): void {
    const num = v instanceof JsonNumber ? v.value : v;
    // rapidjson's type of the number, which TF Serving checks: "1.0" and "1e2" are doubles, never
    // ints, and messages quote them as doubles ("100.0").
    const whole = wholeDouble || (v instanceof JsonNumber && !v.isInteger && Number.isInteger(v.value));
    const integer = typeof num === 'number' && Number.isInteger(num) && !whole;
    const quoted = () => (whole ? formatFloat(num as number, 'float64') : jsonValueString(v));
    const typeError = () => invalid(`JSON Value: ${quoted()} Type: ${jsonTypeString(v)} is not of expected type: ${this.tfName}`);
    switch (this.dtype) {
      case 'float32':
      case 'float16':
      case 'bfloat16':
        if (typeof num !== 'number') throw typeError();
        if (!this.fromReply && Number.isFinite(num) && (integer ? Math.abs(num) > FLOAT32_MAX_INT : Math.abs(num) > FLOAT32_MAX)) {
          throw invalid(`Cannot convert JSON value: ${quoted()} to float without loss of precision.`);
        }
        this.push(num);
        return;
      case 'float64':
        if (typeof num !== 'number') throw typeError();
        if (!this.fromReply && integer && Math.abs(num) > 2 ** 53 - 1) throw invalid(`Cannot convert JSON value: ${quoted()} to double without loss of precision.`);
        this.push(num);
        return;
      case 'int8':
      case 'int16':
      case 'int32':
      case 'uint8':
      case 'uint16':
        if (!integer || (num as number) < -(2 ** 31) || (num as number) > 2 ** 31 - 1) throw typeError();
        this.push(num as number);
        return;
      case 'uint32':
        if (!integer || (num as number) < 0 || (num as number) > 2 ** 32 - 1) throw typeError();
        this.push(num as number);
        return;
      case 'int64':
      case 'uint64':
        if (!integer || (this.dtype === 'uint64' && (num as number) < 0)) throw typeError();
        this.push(BigInt(num));
        return;
      case 'bool':
        if (typeof v !== 'boolean') throw typeError();
        this.push(v ? 1 : 0);
        return;
      case 'string': {
        let bytes: Uint8Array;
        if (typeof v === 'string') bytes = this.enc.encode(v);
        else if (v !== null && typeof v === 'object' && !isJsonList(v)) bytes = decodeB64(v);
        else throw typeError();
        this.stringBytes += bytes.byteLength;
        if (this.strs.length >= (this.limits.maxStringElements ?? Infinity)) {
          throw invalid(`more than ${this.limits.maxStringElements} strings in one tensor (--max_string_elements)`);
        }
        if (this.stringBytes > (this.limits.maxStringBytes ?? Infinity)) {
          throw invalid(`more than ${this.limits.maxStringBytes} bytes of strings in one tensor (--max_string_bytes)`);
        }
        this.strs.push(bytes);
        return;
      }
      default:
        throw new ServingError('UNIMPLEMENTED', `Conversion of JSON Value: ${jsonValueString(v)} to type: ${this.tfName}`);
    }
  }

  /** Adds every number of a block, in order. */
  addBlock(block: NumberBlock): void {
    this.reserve(block.size);
    const n = block.size;
    if (this.dtype === 'float32' || this.dtype === 'float64') {
      // The common case in one tight loop; a value that needs a message goes through add().
      const out = this.values as Float32Array | Float64Array;
      const limit = this.dtype === 'float32' ? FLOAT32_MAX : Infinity;
      const intLimit = this.dtype === 'float32' ? FLOAT32_MAX_INT : 2 ** 53 - 1;
      for (let i = 0; i < n; i++) {
        const v = block.value(i);
        const a = Math.abs(v);
        if ((a > intLimit && Number.isInteger(v)) || (a > limit && a !== Infinity)) {
          this.add(v, block.wholeDouble(i));
          continue;
        }
        out[this.length++] = v;
      }
      return;
    }
    for (let i = 0; i < n; i++) this.add(block.value(i), block.wholeDouble(i));
  }

  count(): number {
    return this.dtype === 'string' ? this.strs.length : this.length;
  }

  tensor(shape: number[]): HostTensor {
    if (this.dtype === 'string') return { dtype: 'string', shape, values: this.strs };
    let values = this.values ?? (allocateValues(this.dtype, 0) as NumericValues);
    if (values.length !== this.length) values = values.slice(0, this.length);
    return { dtype: this.dtype, shape, values } as HostTensor;
  }
}

function checkRank(shape: readonly number[]): void {
  if (shape.length > MAX_RANK) throw invalid(`Too many dimensions in tensor: ${shape.length} (at most ${MAX_RANK})`);
}

function denseShape(v: unknown): number[] {
  const shape: number[] = [];
  let p = v;
  for (;;) {
    if (p instanceof NumberBlock) {
      shape.push(...p.shape);
      break;
    }
    if (!Array.isArray(p)) break;
    shape.push(p.length);
    if (p.length === 0) break;
    p = p[0];
  }
  checkRank(shape);
  return shape;
}

function fill(v: unknown, level: number, shape: readonly number[], filler: Filler): void {
  const rank = shape.length;
  if (v instanceof NumberBlock) {
    // Rectangular: its dimensions are checked at once, with the messages of the walk below.
    for (let i = 0; i < v.shape.length; i++) {
      const at = level + i;
      if (at >= rank) throw invalid(`Encountered list at unexpected level: ${at} expected < ${rank}`);
      if (v.shape[i] !== shape[at]) throw invalid(`Encountered list at unexpected size: ${v.shape[i]} at level: ${at} expected size: ${shape[at]}`);
      if (v.shape[i] === 0) return;
    }
    const scalarLevel = level + v.shape.length;
    if (scalarLevel !== rank) {
      throw invalid(`JSON Value: ${jsonValueString(v.value(0))} found at incorrect level: ${scalarLevel + 1} in the JSON DOM. Expected at level: ${rank}`);
    }
    filler.addBlock(v);
    return;
  }
  if (!Array.isArray(v)) {
    if (level !== rank) {
      throw invalid(`JSON Value: ${jsonValueString(v)} found at incorrect level: ${level + 1} in the JSON DOM. Expected at level: ${rank}`);
    }
    if (v !== null && typeof v === 'object' && !(v instanceof JsonNumber) && filler.dtype !== 'string') {
      throw invalid(`JSON Value: ${jsonValueString(v)} Type: Object is not of expected type: ${filler.tfName}`);
    }
    filler.add(v);
    return;
  }
  if (level >= rank) throw invalid(`Encountered list at unexpected level: ${level} expected < ${rank}`);
  if (v.length !== shape[level]) throw invalid(`Encountered list at unexpected size: ${v.length} at level: ${level} expected size: ${shape[level]}`);
  for (const item of v) fill(item, level + 1, shape, filler);
}

function specDtype(spec: TensorSpec): { dtype: HostDType; tfName: string } {
  return { dtype: dtypeOfDataType(spec.dtype), tfName: tfDtypeString(spec.dtype) };
}

function tensorFromJson(v: unknown, spec: TensorSpec, limits: StringLimits): HostTensor {
  const { dtype, tfName } = specDtype(spec);
  const shape = denseShape(v);
  const filler = new Filler(dtype, tfName, limits);
  fill(v, 0, shape, filler);
  return filler.tensor(shape);
}

function isElementObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !isJsonList(v) && !(v instanceof JsonNumber) && !isB64Object(v);
}

function statusString(e: unknown): string {
  return e instanceof ServingError ? `${e.status}: ${e.message}` : String(e);
}

/**
 * Host tensors of a predict request body (already parsed JSON object, number lists as plain arrays
 * or as {@link NumberBlock}s), typed by the signature inputs, and whether it used the row or the
 * columnar format. `limits` bound the string tensors.
 */
export function predictInputsFromJson(doc: Record<string, unknown>, sig: SignatureSpec, limits: StringLimits = {}): { inputs: Record<string, HostTensor>; format: JsonFormat } {
  const infos = sig.inputs;
  const names = Object.keys(infos).sort();
  if (names.length === 0) throw invalid('Failed to get input map for signature');
  const hasInstances = Object.hasOwn(doc, 'instances');
  const hasInputs = Object.hasOwn(doc, 'inputs');
  if (hasInstances && hasInputs) {
    throw invalid(`JSON Value: ${jsonValueString(doc)} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist `);
  }
  if (hasInstances) {
    const list = doc.instances;
    if (!isJsonList(list)) throw invalid(`JSON Value: ${jsonValueString(doc)} Excepting 'instances' to be an list/array`);
    if ((list instanceof NumberBlock ? list.shape[0] : list.length) === 0) throw invalid(`JSON Value: ${jsonValueString(doc)} No values in 'instances' array`);
    return { inputs: list instanceof NumberBlock ? blockRowsToTensor(list, infos, names) : rowsToTensors(list, infos, names, limits), format: 'row' };
  }
  if (hasInputs) return { inputs: columnsToTensors(doc.inputs, infos, names, limits), format: 'columnar' };
  throw invalid("Missing 'inputs' or 'instances' key");
}

const PLAIN_ROWS_FOR_SEVERAL_INPUTS = 'instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map';

/** Rows that all are numbers or number lists of one shape: one block is the whole batch. */
function blockRowsToTensor(list: NumberBlock, infos: Record<string, TensorSpec>, names: string[]): Record<string, HostTensor> {
  if (names.length > 1) throw invalid(PLAIN_ROWS_FOR_SEVERAL_INPUTS);
  checkRank(list.shape);
  const name = names[0]!;
  const { dtype, tfName } = specDtype(infos[name]!);
  const filler = new Filler(dtype, tfName);
  try {
    filler.addBlock(list);
  } catch (e) {
    const rowSize = list.size / list.shape[0]!;
    throw invalid(`Failed to process element: ${rowSize ? Math.floor(filler.count() / rowSize) : 0} of 'instances' list. Error: ${statusString(e)}`);
  }
  return { [name]: filler.tensor([...list.shape]) };
}

function rowsToTensors(list: unknown[], infos: Record<string, TensorSpec>, names: string[], limits: StringLimits): Record<string, HostTensor> {
  const first = list[0];
  const firstIsObject = first !== null && typeof first === 'object' && !isJsonList(first) && !(first instanceof JsonNumber);
  if (!firstIsObject && names.length > 1) throw invalid(PLAIN_ROWS_FOR_SEVERAL_INPUTS);
  const objects = isElementObject(list[0]);
  const fillers = new Map<string, Filler>();
  const shapes = new Map<string, number[]>();
  const add = (item: unknown, name: string): void => {
    const spec = infos[name];
    if (!spec) throw invalid(`JSON object: does not have named input: ${name}`);
    let filler = fillers.get(name);
    if (!filler) {
      const d = specDtype(spec);
      filler = new Filler(d.dtype, d.tfName, limits);
      fillers.set(name, filler);
    }
    const shape = denseShape(item);
    const before = filler.count();
    fill(item, 0, shape, filler);
    const size = filler.count() - before;
    const prev = shapes.get(name);
    if (!prev) shapes.set(name, shape);
    else {
      const prevSize = prev.reduce((a, b) => a * b, 1);
      if (prevSize !== size) throw invalid(`Expecting tensor size: ${prevSize} but got: ${size}`);
      if (prev.length !== shape.length || prev.some((d, i) => d !== shape[i])) throw invalid(`Expecting shape [${prev.join(',')}] but got: [${shape.join(',')}]`);
    }
  };
  list.forEach((elem, i) => {
    if (objects) {
      if (!isElementObject(elem)) throw invalid(`Expecting object but got list at item ${i} of input list`);
      const keys = Object.keys(elem as object);
      for (const key of keys) {
        try {
          add((elem as Record<string, unknown>)[key], key);
        } catch (e) {
          throw invalid(`Failed to process element: ${i} key: ${key} of 'instances' list. Error: ${statusString(e)}`);
        }
      }
      if (setKey(keys) !== setKey(names)) {
        throw invalid(`Failed to process element: ${i} of 'instances' list. JSON object: ${jsonValueString(elem)} keys must be equal to: ${names.join(',')}`);
      }
    } else {
      if (isElementObject(elem)) throw invalid(`Expecting value/list but got object at item ${i} of input list`);
      try {
        add(elem, names[0]!);
      } catch (e) {
        throw invalid(`Failed to process element: ${i} of 'instances' list. Error: ${statusString(e)}`);
      }
    }
  });
  const out: Record<string, HostTensor> = {};
  for (const [name, filler] of fillers) out[name] = filler.tensor([list.length, ...shapes.get(name)!]);
  return out;
}

function setKey(keys: readonly string[]): string {
  return [...new Set(keys)].sort().join('\u0000');
}

function columnsToTensors(val: unknown, infos: Record<string, TensorSpec>, names: string[], limits: StringLimits): Record<string, HostTensor> {
  if (!isElementObject(val)) {
    if (names.length > 1) {
      throw invalid('inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map');
    }
    return { [names[0]!]: tensorFromJson(val, infos[names[0]!]!, limits) };
  }
  const obj = val as Record<string, unknown>;
  const out: Record<string, HostTensor> = {};
  for (const name of names) {
    if (!Object.hasOwn(obj, name)) throw invalid(`Missing named input: ${name} in 'inputs' object.`);
    out[name] = tensorFromJson(obj[name], infos[name]!, limits);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// outputs -> JSON

function writeScalar(t: HostTensor, i: number, asBytes: boolean, dec: { decode(b: Uint8Array): string }): string {
  switch (t.dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return formatFloat(t.values[i]!, 'float32');
    case 'float64':
      return formatFloat(t.values[i]!, 'float64');
    case 'bool':
      return t.values[i] ? 'true' : 'false';
    case 'string':
      return asBytes ? `{"b64": ${JSON.stringify(Buffer.from(t.values[i]!).toString('base64'))}}` : JSON.stringify(dec.decode(t.values[i]!));
    case 'int64':
    case 'uint64':
      return String(t.values[i]);
    case 'complex64':
    case 'complex128':
      throw invalid(`Failed to write JSON value for tensor type: ${t.dtype === 'complex64' ? 'DT_COMPLEX64' : 'DT_COMPLEX128'}`);
    default:
      return String(t.values[i]);
  }
}

/** Values per piece of an innermost list (bounds the size of each piece). */
const PIECE_VALUES = 4096;

function subtreeSize(t: HostTensor, dim: number): number {
  let n = 1;
  for (let d = dim; d < t.shape.length; d++) n *= t.shape[d]!;
  return n;
}

/** JSON lists of dims [dim..] of `t` from element `offset`, each value written by `scalar`; returns it and the next offset. */
function nestedJson(t: HostTensor, dim: number, offset: number, scalar: (i: number) => string, separator: string): [string, number] {
  if (dim >= t.shape.length) return [scalar(offset), offset + 1];
  const size = t.shape[dim]!;
  const parts: string[] = new Array(size);
  let pos = offset;
  for (let i = 0; i < size; i++) [parts[i], pos] = nestedJson(t, dim + 1, pos, scalar, separator);
  return [`[${parts.join(separator)}]`, pos];
}

/** JSON of dims [dim..] of `t` from element `offset`, for a small subtree of a reply. */
function writeValues(t: HostTensor, dim: number, offset: number, asBytes: boolean, dec: { decode(b: Uint8Array): string }): [string, number] {
  return nestedJson(t, dim, offset, (i) => writeScalar(t, i, asBytes, dec), ', ');
}

/** Pieces of the JSON of dims [dim..] of `t` from element `offset`; returns the next offset. */
function* valuePieces(t: HostTensor, dim: number, offset: number, asBytes: boolean, dec: { decode(b: Uint8Array): string }): Generator<string, number> {
  if (subtreeSize(t, dim) <= PIECE_VALUES) {
    const [text, next] = writeValues(t, dim, offset, asBytes, dec);
    yield text;
    return next;
  }
  const size = t.shape[dim]!;
  if (dim === t.shape.length - 1) {
    if (size === 0) yield '[]';
    for (let i = 0; i < size; i += PIECE_VALUES) {
      const end = Math.min(size, i + PIECE_VALUES);
      const parts: string[] = new Array(end - i);
      for (let j = i; j < end; j++) parts[j - i] = writeScalar(t, offset + j, asBytes, dec);
      yield `${i === 0 ? '[' : ', '}${parts.join(', ')}${end === size ? ']' : ''}`;
    }
    return offset + size;
  }
  yield '[';
  let pos = offset;
  for (let i = 0; i < size; i++) {
    if (i > 0) yield ', ';
    pos = yield* valuePieces(t, dim + 1, pos, asBytes, dec);
  }
  yield ']';
  return pos;
}

/**
 * The reply body of a predict call, in pieces (each a few kilobytes), so that a server can send
 * a large reply while serving others: {"predictions": ...} (row) or {"outputs": ...} (columnar).
 * Checks that fail the whole reply run before the first piece.
 */
export function* predictReplyPieces(outputs: Record<string, HostTensor>, format: JsonFormat): Generator<string, void> {
  const names = Object.keys(outputs).sort();
  if (names.length === 0) throw invalid('Cannot convert empty tensor map to JSON');
  const dec = new TextDecoder();
  const bytes = (name: string) => outputs[name]!.dtype === 'string' && name.endsWith('_bytes');
  for (const name of names) {
    const t = outputs[name]!;
    if ((t.dtype === 'complex64' || t.dtype === 'complex128') && t.values.length > 0) writeScalar(t, 0, false, dec);
  }
  if (format === 'columnar') {
    if (names.length === 1) {
      yield '{\n    "outputs": ';
      yield* valuePieces(outputs[names[0]!]!, 0, 0, bytes(names[0]!), dec);
      yield '\n}';
      return;
    }
    yield '{\n    "outputs": {\n';
    for (const [i, n] of names.entries()) {
      yield `${i > 0 ? ',\n' : ''}        ${JSON.stringify(n)}: `;
      yield* valuePieces(outputs[n]!, 0, 0, bytes(n), dec);
    }
    yield '\n    }\n}';
    return;
  }
  let batch = -1;
  for (const name of names) {
    const t = outputs[name]!;
    if (t.shape.length === 0) throw invalid(`Tensor name: ${name} has no shape information `);
    if (batch >= 0 && batch !== t.shape[0]) throw invalid(`Tensor name: ${name} has inconsistent batch size: ${t.shape[0]} expecting: ${batch}`);
    batch = t.shape[0]!;
  }
  const offsets = new Map(names.map((n) => [n, 0]));
  const rowSize = names.reduce((sum, n) => sum + subtreeSize(outputs[n]!, 1), 0);
  yield '{\n    "predictions": [';
  // Small rows are written a batch of rows per piece; a large row is itself written in pieces.
  let rows: string[] = [];
  for (let item = 0; item < batch; item++) {
    if (rowSize <= PIECE_VALUES) {
      const cells = names.map((n) => {
        const [text, next] = writeValues(outputs[n]!, 1, offsets.get(n)!, bytes(n), dec);
        offsets.set(n, next);
        return names.length > 1 ? `${JSON.stringify(n)}: ${text}` : text;
      });
      rows.push(names.length > 1 ? `{${cells.join(', ')}}` : cells[0]!);
      if (rows.length * Math.max(1, rowSize) >= PIECE_VALUES) {
        yield `${item + 1 > rows.length ? ', ' : ''}${rows.join(', ')}`;
        rows = [];
      }
      continue;
    }
    if (item > 0) yield ', ';
    if (names.length > 1) yield '{';
    for (const [i, n] of names.entries()) {
      if (names.length > 1) yield `${i > 0 ? ', ' : ''}${JSON.stringify(n)}: `;
      offsets.set(n, yield* valuePieces(outputs[n]!, 1, offsets.get(n)!, bytes(n), dec));
    }
    if (names.length > 1) yield '}';
  }
  if (rows.length) yield `${batch > rows.length ? ', ' : ''}${rows.join(', ')}`;
  yield '\n    ]\n}';
}

/** The reply body of a predict call as one string (see {@link predictReplyPieces}). */
export function predictReplyJson(outputs: Record<string, HostTensor>, format: JsonFormat): string {
  return [...predictReplyPieces(outputs, format)].join('');
}

// ------------------------------------------------------------------------------------------------
// classify / regress

function addFeatureValue(v: unknown, name: string, f: FeatureMessage): void {
  const kindError = () => {
    const kind = f.bytes_list ? 'bytes' : f.float_list ? 'float' : f.int64_list ? 'int64' : 'UNKNOWN';
    return invalid(`Unexpected element type in feature: ${name} expecting type: ${kind}`);
  };
  const isKind = (k: 'bytes_list' | 'float_list' | 'int64_list') => (!f.bytes_list && !f.float_list && !f.int64_list) || !!f[k];
  if (v === null || Array.isArray(v)) throw invalid(`Feature: ${name} has element with unexpected JSON type: ${jsonTypeString(v)}`);
  if (typeof v === 'boolean') {
    if (!isKind('int64_list')) throw kindError();
    (f.int64_list ??= { value: [] }).value!.push(v ? 1 : 0);
  } else if (typeof v === 'string') {
    if (!isKind('bytes_list')) throw kindError();
    (f.bytes_list ??= { value: [] }).value!.push(Buffer.from(v, 'utf8'));
  } else if (v instanceof JsonNumber) {
    // As rapidjson reads numbers: a whole number beyond uint64 (or below int64) is a double, and
    // doubles become floats; NaN and +-Infinity pass (TF Serving's IsLosslessDecimal lets non-finite
    // values through; its REST page calls them valid feature values).
    const whole = v.isInteger ? BigInt(v.text) : undefined;
    if (whole === undefined || whole > UINT64_MAX || whole < INT64_MIN) {
      if (!isKind('float_list')) throw kindError();
      if (Number.isFinite(v.value) && Math.abs(v.value) > FLOAT32_MAX) throw invalid(`Cannot convert JSON value: ${v.text} to float without loss of precision.`);
      (f.float_list ??= { value: [] }).value!.push(v.value);
    } else {
      if (!isKind('int64_list')) throw kindError();
      if (whole > INT64_MAX) throw invalid(`Feature: ${name} has uint64 element. Only int64 is supported.`);
      (f.int64_list ??= { value: [] }).value!.push(v.value);
    }
  } else if (typeof v === 'object') {
    if (!isB64Object(v)) throw invalid(`Feature: ${name} has element with unexpected JSON type: ${jsonTypeString(v)}`);
    if (!isKind('bytes_list')) throw kindError();
    (f.bytes_list ??= { value: [] }).value!.push(decodeB64(v));
  }
}

/** A tf.Example message from a JSON object of features (numbers parsed with `tagNumbers`). */
export function exampleFromJson(v: unknown): ExampleMessage {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof JsonNumber) {
    throw invalid(`Example must be JSON object but got JSON ${jsonTypeString(v)}`);
  }
  const feature: Record<string, FeatureMessage> = {};
  for (const [name, content] of Object.entries(v)) {
    const f: FeatureMessage = {};
    if (Array.isArray(content)) for (const item of content) addFeatureValue(item, name, f);
    else addFeatureValue(content, name, f);
    feature[name] = f;
  }
  return { features: { feature } };
}

/** The Input of a classify/regress body: examples, with the context when given. */
export function inputFromJson(doc: Record<string, unknown>): { example_list?: { examples: ExampleMessage[] }; example_list_with_context?: { examples: ExampleMessage[]; context: ExampleMessage } } {
  const context = Object.hasOwn(doc, 'context') ? exampleFromJson(doc.context) : undefined;
  // TF Serving names "classify" here for regress too: one FillClassifyRegressRequestFromJson serves both.
  if (!Object.hasOwn(doc, 'examples')) throw invalid(`JSON Value: ${jsonValueString(doc)} When method is classify, key 'examples' is expected and was not found`);
  const list = doc.examples;
  if (!Array.isArray(list)) throw invalid(`JSON Value: ${jsonValueString(doc)} Expecting 'examples' value to be an list/array`);
  if (list.length === 0) throw invalid(`JSON Value: ${jsonValueString(doc)} 'examples' value is an empty array`);
  const examples = list.map(exampleFromJson);
  return context ? { example_list_with_context: { examples, context } } : { example_list: { examples } };
}

/** {"results": [[["label", score], ...], ...]} */
export function classifyReplyJson(result: { classifications: { classes: { label: string; score: number }[] }[] }): string {
  if (result.classifications.length === 0) throw invalid('Cannot convert empty ClassificationResults to JSON');
  const rows = result.classifications.map((c) => `[${c.classes.map((k) => `[${JSON.stringify(k.label)}, ${formatFloat(k.score, 'float32')}]`).join(', ')}]`);
  return `{\n    "results": [${rows.join(', ')}]\n}`;
}

/** {"results": [v, ...]} */
export function regressReplyJson(result: { regressions: { value: number }[] }): string {
  if (result.regressions.length === 0) throw invalid('Cannot convert empty RegressionResults to JSON');
  return `{\n    "results": [${result.regressions.map((r) => formatFloat(r.value, 'float32')).join(', ')}]\n}`;
}

// ------------------------------------------------------------------------------------------------
// client side

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function clientScalar(t: HostTensor, i: number): string {
  switch (t.dtype) {
    case 'string': {
      const b = t.values[i]!;
      return isUtf8(b) ? JSON.stringify(Buffer.from(b).toString('utf8')) : `{"b64":"${Buffer.from(b).toString('base64')}"}`;
    }
    case 'bool':
      return t.values[i] ? 'true' : 'false';
    case 'float32':
    case 'float16':
    case 'bfloat16':
    case 'float64': {
      const v = t.values[i]!;
      if (!Number.isFinite(v)) return formatFloat(v, 'float64');
      // A whole number beyond float's exact integers goes as a double literal: written as an integer,
      // TF Serving refuses it ("Cannot convert JSON value: 16777218 to float without loss of precision.").
      return Number.isInteger(v) && Math.abs(v) > FLOAT32_MAX_INT && Math.abs(v) < 1e21 ? `${v}.0` : String(v);
    }
    case 'complex64':
    case 'complex128':
      throw new ServingError('INVALID_ARGUMENT', `${t.dtype} tensors have no REST JSON form`);
    default:
      return String(t.values[i]);
  }
}

/** JSON text of a tensor's values from dimension `dim`, starting at element `offset`. */
function clientValues(t: HostTensor, dim: number, offset: number): [string, number] {
  return nestedJson(t, dim, offset, (i) => clientScalar(t, i), ',');
}

/** The body of a REST predict request in row or columnar format. */
export function predictRequestJson(inputs: Record<string, HostTensor>, format: JsonFormat, signatureName?: string): string {
  const names = Object.keys(inputs);
  if (names.length === 0) throw new ServingError('INVALID_ARGUMENT', 'a predict request needs at least one input');
  const head = signatureName ? `"signature_name":${JSON.stringify(signatureName)},` : '';
  if (format === 'columnar') {
    if (names.length === 1) return `{${head}"inputs":${clientValues(inputs[names[0]!]!, 0, 0)[0]}}`;
    return `{${head}"inputs":{${names.map((n) => `${JSON.stringify(n)}:${clientValues(inputs[n]!, 0, 0)[0]}`).join(',')}}}`;
  }
  const batch = inputs[names[0]!]!.shape[0];
  for (const n of names) {
    const t = inputs[n]!;
    if (t.shape.length === 0 || t.shape[0] !== batch) {
      throw new ServingError('INVALID_ARGUMENT', `row format needs every input batched alike: input "${n}" has shape [${t.shape.join(',')}], expected [${batch},...]`);
    }
  }
  const offsets = new Map(names.map((n) => [n, 0]));
  const rows: string[] = [];
  for (let i = 0; i < batch!; i++) {
    const cells = names.map((n) => {
      const [text, next] = clientValues(inputs[n]!, 1, offsets.get(n)!);
      offsets.set(n, next);
      return names.length > 1 ? `${JSON.stringify(n)}:${text}` : text;
    });
    rows.push(names.length > 1 ? `{${cells.join(',')}}` : cells[0]!);
  }
  return `{${head}"instances":[${rows.join(',')}]}`;
}

/** A host tensor from a JSON reply value, typed by the output's signature dtype when known. */
export function tensorFromReply(v: unknown, dtypeName: string | undefined, what: string): HostTensor {
  let dtype: HostDType;
  if (dtypeName) dtype = dtypeOfDataType(dtypeName, what);
  else {
    let leaf = v;
    while (Array.isArray(leaf)) leaf = leaf[0];
    dtype = typeof leaf === 'string' || isB64Object(leaf) ? 'string' : typeof leaf === 'boolean' ? 'bool' : 'float32';
  }
  const shape = denseShape(v);
  const filler = new Filler(dtype, tfDtypeString(dtypeName ?? 'DT_FLOAT'), {}, true);
  try {
    fill(v, 0, shape, filler);
  } catch (e) {
    throw new ServingError('INTERNAL', `${what}: the server's reply is not a ${dtype} tensor: ${e instanceof Error ? e.message : String(e)}`);
  }
  return filler.tensor(shape);
}

/** Host tensors of a predict reply ({"predictions"} or {"outputs"}), typed by the signature outputs. */
export function outputsFromReply(doc: Record<string, unknown>, outputs: Record<string, TensorSpec> | undefined, requested: readonly string[]): Record<string, HostTensor> {
  const dtypeOf = (alias: string) => outputs?.[alias]?.dtype;
  const names = requested.length ? [...requested] : Object.keys(outputs ?? {});
  if (Object.hasOwn(doc, 'outputs')) {
    const val = doc.outputs;
    const single = names.length === 1 || !(val !== null && typeof val === 'object' && !Array.isArray(val) && !isB64Object(val));
    if (single) {
      const alias = names.length === 1 ? names[0]! : 'output';
      return { [alias]: tensorFromReply(val, dtypeOf(alias), `output "${alias}"`) };
    }
    return Object.fromEntries(Object.entries(val as Record<string, unknown>).map(([k, x]) => [k, tensorFromReply(x, dtypeOf(k), `output "${k}"`)]));
  }
  if (Object.hasOwn(doc, 'predictions')) {
    const rows = doc.predictions;
    if (!Array.isArray(rows)) throw new ServingError('INTERNAL', 'the server\'s "predictions" is not a list');
    const objects = rows.length > 0 && isElementObject(rows[0]) && names.length !== 1;
    if (!objects) {
      const alias = names.length === 1 ? names[0]! : 'output';
      return { [alias]: tensorFromReply(rows, dtypeOf(alias), `output "${alias}"`) };
    }
    const keys = Object.keys(rows[0] as object);
    return Object.fromEntries(
      keys.map((k) => [k, tensorFromReply(rows.map((r) => (r as Record<string, unknown>)[k]), dtypeOf(k), `output "${k}"`)]),
    );
  }
  throw new ServingError('INTERNAL', 'the server\'s reply has neither "predictions" nor "outputs"');
}
