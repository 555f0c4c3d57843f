/**
 * JSON as TF Serving's REST API reads and writes it (rapidjson with NaN/Infinity enabled):
 * - {@link parseServingJson} accepts the bare tokens NaN, Infinity and -Infinity, reports syntax
 *   errors with rapidjson's wording and byte offset ("JSON Parse error: Invalid value. at offset: 0"),
 *   and can keep whether a number was written as an integer (tf.Example features depend on it);
 * - {@link formatFloat} writes floats the way the server does: shortest `%g` form that round-trips
 *   in the value's own precision, with ".0" added to whole numbers, and NaN/Infinity as bare tokens.
 *
 * @example
 * parseServingJson('{"instances": [NaN, 1.5]}'); // { instances: [NaN, 1.5] }
 * formatFloat(3, 'float32');                     // '3.0'
 */
import { ServingError } from './status.js';

/** A number from JSON with the form it was written in (see `parseServingJson({ tagNumbers })`). */
export class JsonNumber {
  constructor(
    readonly value: number,
    /** Written without fraction or exponent (rapidjson's IsInt64). */
    readonly isInteger: boolean,
    /** The literal as written. */
    readonly text: string,
  ) {}
}

export interface ParseJsonOptions {
  /** Return every number as a {@link JsonNumber} instead of a plain number. */
  tagNumbers?: boolean;
  /**
   * Keep rectangular lists of plain numbers as {@link NumberBlock}s (8 bytes a number, one object a
   * list) instead of JS arrays; ignored with `tagNumbers`. What the server's predict path parses into.
   */
  compact?: boolean;
  /**
   * Most values the parse may create outside number blocks (strings, keys, objects, lists, numbers
   * outside blocks): a bound on the memory a body can make the parser hold. Default unbounded.
   */
  maxNodes?: number;
}

function parseError(message: string, offset: number): ServingError {
  return new ServingError('INVALID_ARGUMENT', `JSON Parse error: ${message} at offset: ${offset}`);
}

/**
 * Nesting deeper than this is refused while parsing. The parser keeps its own stack, so depth
 * cannot overflow the JS stack; code that walks the result recursively bounds rank separately.
 */
export const MAX_JSON_DEPTH = 10_000;

const CHUNK_BITS = 20;
const CHUNK = 1 << CHUNK_BITS;

/** Numbers of number blocks, in chunks of 1 Mi doubles (no copying as it grows). */
class NumberArena {
  private readonly chunks: Float64Array[] = [];
  /** Per chunk, a bit per number written as a whole-valued double ("1.0", "1e2"): made on first use. */
  private readonly wholeDoubles: (Uint8Array | undefined)[] = [];
  length = 0;

  push(v: number): void {
    const c = this.length >>> CHUNK_BITS;
    if (c === this.chunks.length) this.chunks.push(new Float64Array(CHUNK));
    this.chunks[c]![this.length & (CHUNK - 1)] = v;
    this.length++;
  }

  get(i: number): number {
    return this.chunks[i >>> CHUNK_BITS]![i & (CHUNK - 1)]!;
  }

  /** Marks number `i` as written as a whole-valued double. */
  markWholeDouble(i: number): void {
    const c = i >>> CHUNK_BITS;
    const bits = (this.wholeDoubles[c] ??= new Uint8Array(CHUNK >>> 3));
    bits[(i & (CHUNK - 1)) >>> 3]! |= 1 << (i & 7);
  }

  isWholeDouble(i: number): boolean {
    const bits = this.wholeDoubles[i >>> CHUNK_BITS];
    return bits !== undefined && (bits[(i & (CHUNK - 1)) >>> 3]! & (1 << (i & 7))) !== 0;
  }
}

/**
 * A rectangular JSON list of plain numbers (nested to any depth), as the compact parse keeps it:
 * its shape and its numbers in row-major order, without a JS value per number.
 *
 * @example
 * const block = parseServingJson('[[1, 2], [3, 4]]', { compact: true }) as NumberBlock;
 * block.shape;    // [2, 2]
 * block.value(3); // 4
 */
export class NumberBlock {
  /** Number of values (the product of the shape). */
  readonly size: number;

  constructor(
    readonly shape: readonly number[],
    private readonly arena: NumberArena,
    private readonly start: number,
  ) {
    let n = 1;
    for (const d of shape) n *= d;
    this.size = n;
  }

  /** The i-th number in row-major order. */
  value(i: number): number {
    return this.arena.get(this.start + i);
  }

  /**
   * Whether the i-th number is whole but was a double to rapidjson: written with a fraction or an
   * exponent ("1.0", "1e2"), or beyond 64-bit integers. TF Serving types it as a double, not an int.
   */
  wholeDouble(i: number): boolean {
    return this.arena.isWholeDouble(this.start + i);
  }

  /** Item `i` of the outer list: a number (rank 1; a {@link JsonNumber} if a whole double) or a block of rank - 1. */
  item(i: number): number | JsonNumber | NumberBlock {
    if (this.shape.length === 1) return this.wholeDouble(i) ? new JsonNumber(this.value(i), false, formatFloat(this.value(i), 'float64')) : this.value(i);
    const inner = this.shape.slice(1);
    return new NumberBlock(inner, this.arena, this.start + i * (this.size / this.shape[0]!));
  }
}

/** True for a JSON list, as a JS array or a {@link NumberBlock}. */
export function isJsonList(v: unknown): v is unknown[] | NumberBlock {
  return Array.isArray(v) || v instanceof NumberBlock;
}

interface ArrayFrame {
  array: true;
  /** The items, or null while every item so far fits one number block. */
  items: unknown[] | null;
  /** Items so far in block mode, their common shape (null before the first) and arena start. */
  count: number;
  itemShape: readonly number[] | null;
  start: number;
}

interface ObjectFrame {
  array: false;
  obj: Record<string, unknown>;
  key: string;
}

const SCALAR: readonly number[] = [];
/** Lists nested deeper are kept as JS arrays: no tensor has more dimensions (TensorFlow's limit is 254). */
const MAX_BLOCK_RANK = 255;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** An integer literal outside int64 and uint64, which rapidjson parses as a double. */
function beyond64Bits(text: string): boolean {
  const v = BigInt(text);
  return v < -(2n ** 63n) || v > 2n ** 64n - 1n;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * rapidjson-compatible parser with an explicit stack (no recursion) that can stop after a slice of
 * the text and resume, so that a large body can be parsed between other clients' requests.
 */
class Parser {
  pos = 0;
  root: unknown;
  private depth = 0;
  private nodes = 0;
  private readonly stack: (ArrayFrame | ObjectFrame)[] = [];
  private readonly arena = new NumberArena();
  /** Where the number just read was written, when it is a whole-valued double (see number()); else -1. */
  private wholeDoubleStart = -1;
  private readonly compact: boolean;
  private readonly maxNodes: number;

  constructor(
    private readonly s: string,
    private readonly tag: boolean,
    options: ParseJsonOptions,
  ) {
    this.compact = !!options.compact && !tag;
    this.maxNodes = options.maxNodes ?? Infinity;
  }

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.pos++;
      else break;
    }
  }

  /** Counts one value held outside number blocks. */
  private node<T>(v: T): T {
    if (++this.nodes > this.maxNodes) {
      throw new ServingError('INVALID_ARGUMENT', `JSON Parse error: more than ${this.maxNodes} strings, objects and lists (--rest_api_max_json_nodes) at offset: ${this.pos}`);
    }
    return v;
  }

  /**
   * Parses until the document is complete (returns true) or, between values, past offset `until`
   * (returns false; call again to go on).
   */
  run(until: number): boolean {
    const s = this.s;
    for (;;) {
      if (this.pos > until) return false;
      this.ws();
      let v: unknown;
      const c = s.charCodeAt(this.pos);
      if (c === 123) {
        this.enter();
        this.pos++;
        this.ws();
        const obj = this.node<Record<string, unknown>>({});
        if (s.charCodeAt(this.pos) === 125) {
          this.pos++;
          this.depth--;
          v = obj;
        } else {
          this.stack.push({ array: false, obj, key: this.key() });
          continue;
        }
      } else if (c === 91) {
        this.enter();
        this.pos++;
        this.ws();
        const frame: ArrayFrame = { array: true, items: this.compact ? null : [], count: 0, itemShape: null, start: 0 };
        if (s.charCodeAt(this.pos) === 93) {
          this.pos++;
          this.depth--;
          v = this.finishArray(frame);
        } else {
          this.stack.push(frame);
          continue;
        }
      } else v = this.scalar();
      let wholeDouble = false;
      if (this.wholeDoubleStart >= 0) {
        // In a list it is a marked number of the block; elsewhere a JsonNumber that says so.
        const top = this.stack[this.stack.length - 1];
        if (top?.array) wholeDouble = true;
        else v = this.node(new JsonNumber(v as number, false, s.slice(this.wholeDoubleStart, this.pos)));
        this.wholeDoubleStart = -1;
      }
      // Attach the value to its container; close every container that ends here.
      for (;;) {
        const top = this.stack[this.stack.length - 1];
        if (!top) {
          this.root = v;
          return true;
        }
        if (top.array) {
          this.addItem(top, v, wholeDouble);
          wholeDouble = false;
        }
        else Object.defineProperty(top.obj, top.key, { value: v, enumerable: true, writable: true, configurable: true });
        this.ws();
        const d = s.charCodeAt(this.pos);
        if (d === 44) {
          this.pos++;
          if (!top.array) {
            this.ws();
            top.key = this.key();
          }
          break;
        }
        if (d !== (top.array ? 93 : 125)) {
          throw parseError(top.array ? "Missing a comma or ']' after an array element." : "Missing a comma or '}' after an object member.", this.pos);
        }
        this.pos++;
        this.depth--;
        this.stack.pop();
        v = top.array ? this.finishArray(top) : top.obj;
      }
    }
  }

  private key(): string {
    if (this.s[this.pos] !== '"') throw parseError('Missing a name for object member.', this.pos);
    const key = this.node(this.string());
    this.ws();
    if (this.s[this.pos] !== ':') throw parseError('Missing a colon after a name of object member.', this.pos);
    this.pos++;
    return key;
  }

  private addItem(frame: ArrayFrame, v: unknown, wholeDouble = false): void {
    if (frame.items === null) {
      if (typeof v === 'number') {
        if (frame.count === 0) {
          frame.itemShape = SCALAR;
          frame.start = this.arena.length;
        }
        if (frame.itemShape === SCALAR) {
          if (wholeDouble) this.arena.markWholeDouble(this.arena.length);
          this.arena.push(v);
          frame.count++;
          return;
        }
      } else if (v instanceof NumberBlock && v.shape.length < MAX_BLOCK_RANK) {
        if (frame.count === 0) {
          frame.itemShape = v.shape;
          frame.start = this.arena.length - v.size;
        }
        if (frame.itemShape !== SCALAR && sameShape(frame.itemShape!, v.shape)) {
          frame.count++;
          this.nodes--; // merged into this list's block
          return;
        }
      }
      this.materialize(frame);
    }
    if (wholeDouble) frame.items!.push(this.node(new JsonNumber(v as number, false, formatFloat(v as number, 'float64'))));
    else frame.items!.push(typeof v === 'number' ? this.node(v) : v);
  }

  /** Turns a list parsed so far as one block into a JS array of its items. */
  private materialize(frame: ArrayFrame): void {
    const items: unknown[] = [];
    if (frame.count > 0) {
      const block = new NumberBlock([frame.count, ...frame.itemShape!], this.arena, frame.start);
      for (let i = 0; i < frame.count; i++) items.push(this.node(block.item(i)));
    }
    frame.items = items;
  }

  private finishArray(frame: ArrayFrame): unknown {
    if (frame.items !== null) return this.node(frame.items);
    const shape = frame.count === 0 ? [0] : [frame.count, ...frame.itemShape!];
    return this.node(new NumberBlock(shape, this.arena, frame.count === 0 ? this.arena.length : frame.start));
  }

  private scalar(): unknown {
    const s = this.s;
    switch (s[this.pos]) {
      case '"':
        return this.node(this.string());
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      case 'N':
        return this.literal('NaN', NaN, 'NaN');
      case 'I':
        return this.literal('Infinity', Infinity, 'Infinity');
      default: {
        const c = s.charCodeAt(this.pos);
        if (c === 45 || (c >= 48 && c <= 57)) return this.number();
        throw parseError('Invalid value.', this.pos);
      }
    }
  }

  private num(value: number, isInteger: boolean, text: string): unknown {
    return this.tag ? this.node(new JsonNumber(value, isInteger, text)) : value;
  }

  private literal(word: string, value: unknown, numberText?: string): unknown {
    if (!this.s.startsWith(word, this.pos)) throw parseError('Invalid value.', this.pos);
    this.pos += word.length;
    return numberText === undefined ? value : this.num(value as number, false, numberText);
  }

  private number(): unknown {
    const s = this.s;
    const start = this.pos;
    const negative = s.charCodeAt(this.pos) === 45;
    if (negative) {
      this.pos++;
      if (s.startsWith('Infinity', this.pos)) {
        this.pos += 8;
        return this.num(-Infinity, false, '-Infinity');
      }
    }
    // Digits accumulate into an exact mantissa; with at most 15 of them and a power of ten up to
    // 22 one multiplication or division rounds correctly (Clinger's fast path), else Number() parses.
    let mantissa = 0;
    let digits = 0;
    let scale = 0;
    const digitsFrom = this.pos;
    let c = s.charCodeAt(this.pos);
    if (c === 48) c = s.charCodeAt(++this.pos);
    else {
      while (c >= 48 && c <= 57) {
        mantissa = mantissa * 10 + (c - 48);
        digits++;
        c = s.charCodeAt(++this.pos);
      }
    }
    if (this.pos === digitsFrom) throw parseError('Invalid value.', start);
    let isInteger = true;
    if (c === 46) {
      isInteger = false;
      const f = ++this.pos;
      c = s.charCodeAt(this.pos);
      while (c >= 48 && c <= 57) {
        mantissa = mantissa * 10 + (c - 48);
        digits++;
        scale--;
        c = s.charCodeAt(++this.pos);
      }
      if (this.pos === f) throw parseError('Miss fraction part in number.', this.pos);
    }
    if (c === 101 || c === 69) {
      isInteger = false;
      c = s.charCodeAt(++this.pos);
      let sign = 1;
      if (c === 43 || c === 45) {
        sign = c === 45 ? -1 : 1;
        c = s.charCodeAt(++this.pos);
      }
      const e = this.pos;
      let exp = 0;
      while (c >= 48 && c <= 57) {
        if (exp < 1e6) exp = exp * 10 + (c - 48);
        c = s.charCodeAt(++this.pos);
      }
      if (this.pos === e) throw parseError('Miss exponent in number.', this.pos);
      scale += sign * exp;
    }
    let value: number;
    if (digits <= 15 && scale >= -22 && scale <= 22) {
      value = scale >= 0 ? mantissa * POW10[scale]! : mantissa / POW10[-scale]!;
      if (negative) value = -value;
    } else value = Number(s.slice(start, this.pos));
    if (!Number.isFinite(value)) throw parseError('Number too big to be stored in double.', start);
    if (this.tag) return this.num(value, isInteger, s.slice(start, this.pos));
    // A whole value that rapidjson holds as a double (a fraction or exponent written, or an integer
    // beyond int64/uint64) stays marked, so that tensors are typed as TF Serving types them.
    if (this.compact && Number.isInteger(value) && (!isInteger || (Math.abs(value) >= 2 ** 63 && beyond64Bits(s.slice(start, this.pos))))) {
      this.wholeDoubleStart = start;
    }
    return value;
  }

  private string(): string {
    const s = this.s;
    let run = ++this.pos;
    const parts: string[] = [];
    for (;;) {
      // Runs without escapes are sliced whole.
      while (run < s.length) {
        const c = s.charCodeAt(run);
        if (c === 34 || c === 92 || c < 32) break;
        run++;
      }
      if (run >= s.length) throw parseError('Missing a closing quotation mark in string.', run);
      const c = s.charCodeAt(run);
      if (c === 34) {
        const last = s.slice(this.pos, run);
        this.pos = run + 1;
        if (parts.length === 0) return last;
        parts.push(last);
        return parts.join('');
      }
      parts.push(s.slice(this.pos, run));
      this.pos = run;
      if (c < 32) throw parseError('Invalid encoding in string.', this.pos);
      const e = s[this.pos + 1];
      if (e !== undefined && e in ESCAPES) {
        parts.push(ESCAPES[e]!);
        this.pos += 2;
      } else if (e === 'u') {
        const hex = s.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw parseError('Incorrect hex digit after \\u escape in string.', this.pos + 2);
        parts.push(String.fromCharCode(parseInt(hex, 16)));
        this.pos += 6;
      } else throw parseError('Invalid escape character in string.', this.pos + 1);
      run = this.pos;
    }
  }

  private enter(): void {
    if (++this.depth > MAX_JSON_DEPTH) throw parseError('Terminate parsing due to Handler error.', this.pos);
  }

  /** Checks what follows the root value and returns it. */
  finish(): unknown {
    this.ws();
    if (this.pos < this.s.length) throw parseError('The document root must not be followed by other values.', this.pos);
    return this.root;
  }
}

function startParse(text: string, options: ParseJsonOptions): Parser {
  if (text.length === 0) throw new ServingError('INVALID_ARGUMENT', 'JSON Parse error: The document is empty');
  const p = new Parser(text, options.tagNumbers ?? false, options);
  p.ws();
  if (p.pos >= text.length) throw parseError('The document is empty.', p.pos);
  return p;
}

/**
 * Parses a REST request body as TF Serving does. Throws a ServingError (INVALID_ARGUMENT) with
 * rapidjson's message and offset on bad syntax.
 *
 * @example
 * parseServingJson('[1, -Infinity]'); // [1, -Infinity]
 */
export function parseServingJson(text: string, options: ParseJsonOptions = {}): unknown {
  if (!options.tagNumbers && !options.compact && options.maxNodes === undefined) {
    // The common case (valid standard JSON) goes through V8's native parser.
    try {
      return JSON.parse(text);
    } catch {
      // Fall through for NaN/Infinity and for rapidjson-style error messages.
    }
  }
  const p = startParse(text, options);
  p.run(Infinity);
  return p.finish();
}

/** Characters parsed between two yields to the event loop (a few milliseconds of work). */
const PARSE_SLICE = 1 << 20;

/**
 * {@link parseServingJson} that yields to the event loop after every megabyte of text, so that a
 * large body delays other clients by milliseconds rather than seconds.
 *
 * @example
 * const doc = await parseServingJsonAsync(body, { compact: true, maxNodes: 2 ** 20 });
 */
export async function parseServingJsonAsync(text: string, options: ParseJsonOptions = {}): Promise<unknown> {
  const p = startParse(text, options);
  while (!p.run(p.pos + PARSE_SLICE)) await new Promise<void>((resolve) => setImmediate(resolve));
  return p.finish();
}

/** A C `%.<precision>g` rendering of a finite number. */
function formatG(v: number, precision: number): string {
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const exp = v.toExponential(precision - 1);
  const ePos = exp.indexOf('e');
  const x = Number(exp.slice(ePos + 1));
  if (x < -4 || x >= precision) {
    let mant = exp.slice(0, ePos);
    if (mant.includes('.')) mant = mant.replace(/0+$/, '').replace(/\.$/, '');
    const sign = x < 0 ? '-' : '+';
    const digits = String(Math.abs(x)).padStart(2, '0');
    return `${mant}e${sign}${digits}`;
  }
  let fixed = v.toFixed(Math.max(0, precision - 1 - x));
  if (fixed.includes('.')) fixed = fixed.replace(/0+$/, '').replace(/\.$/, '');
  return fixed;
}

/**
 * A float as TF Serving writes it in JSON: 6 significant digits when that round-trips in the
 * value's precision (float32 or float64), else 9 (float32) or 17 (float64); ".0" appended to
 * whole numbers written without exponent; NaN, Infinity, -Infinity as bare tokens.
 *
 * @example
 * formatFloat(0.1, 'float32'); // '0.1'
 * formatFloat(2, 'float64');   // '2.0'
 */
export function formatFloat(v: number, precision: 'float32' | 'float64'): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return Object.is(v, -0) ? '-0.0' : `${v}.0`;
  let s = formatG(v, 6);
  const back = Number(s);
  const same = precision === 'float32' ? Math.fround(back) === Math.fround(v) : back === v;
  if (!same) s = formatG(v, precision === 'float32' ? 9 : 17);
  if (!s.includes('.') && !s.includes('e')) s += '.0';
  return s;
}
