/**
 * The JSON mapping of etcd's HTTP gateway (grpc-gateway over Go's jsonpb with original proto field
 * names), reproduced on protobufjs types:
 *
 * Input (`jsonToMessage`): a JSON object per message; a field is found under its proto name
 * ("create_revision") or its lowerCamel name ("createRevision"; the camel one wins when both are
 * given); unknown fields are ignored; `null` leaves a field unset. bytes are standard base64 (with
 * padding; newlines ignored); 64-bit and other integers are JSON numbers or decimal strings; enums
 * are names or numbers. Errors carry the text Go's decoder produces for the same input ("invalid
 * character 'b' looking for beginning of object key string", "illegal base64 data at input byte 4",
 * "json: cannot unmarshal bool into Go value of type int64", …), because that text is what the
 * gateway answers with.
 *
 * Output (`messageToJson`): proto field names in declaration order; fields at their zero value left
 * out (a oneof member or a sub-message present on the wire is kept even when empty); int64 and
 * uint64 as decimal strings; bytes as standard base64; enums by name; strings escaped as Go's
 * encoding/json escapes them (`<`, `>`, `&`, U+2028 and U+2029 as \u escapes).
 *
 * The JSON text itself is read by `JsonReader` with Go's syntax errors: `parseDocument` for a whole
 * body (json.Unmarshal) and `JsonStreamDecoder` for a body holding a sequence of values
 * (json.Decoder, used by the streaming endpoints).
 */
import * as protobuf from 'protobufjs';

/** A failure to read a request, with the message Go's decoder gives for the same input. */
export class GoJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoJsonError';
  }
}

/** Thrown internally when the input ends inside a value. */
class EndOfInput extends Error {}

/** A parsed JSON value; numbers and strings keep their raw text (the bytes between the quotes). */
export type JsonValue =
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'number'; raw: string }
  | { kind: 'string'; raw: Buffer; value: Buffer }
  | { kind: 'array'; items: JsonValue[] }
  | { kind: 'object'; entries: [string, JsonValue][] };

/** Go's strconv.Quote of one byte taken as a rune, between single quotes (json's quoteChar). */
function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return `'"'`;
  return `'${quoteRune(c)}'`;
}

function quoteRune(c: number): string {
  switch (c) {
    case 0x07:
      return '\\a';
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    case 0x0b:
      return '\\v';
    case 0x5c:
      return '\\\\';
    default:
      break;
  }
  if (c < 0x20 || c === 0x7f) return `\\x${c.toString(16).padStart(2, '0')}`;
  if ((c >= 0x80 && c <= 0xa0) || c === 0xad) return `\\u${c.toString(16).padStart(4, '0')}`;
  return String.fromCharCode(c);
}

/** Go's strconv.Quote for a string (printable characters kept, the rest escaped). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c === 0x22) out += '\\"';
    else if (c < 0x80 || (c >= 0x80 && c <= 0xa0) || c === 0xad) out += quoteRune(c);
    else out += ch;
  }
  return `${out}"`;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Reads JSON values from bytes with the errors of Go's encoding/json scanner. */
class JsonReader {
  pos = 0;
  constructor(private readonly b: Buffer) {}

  private peek(): number {
    if (this.pos >= this.b.length) throw new EndOfInput();
    return this.b[this.pos] ?? 0;
  }

  skipSpace(): void {
    while (this.pos < this.b.length && isSpace(this.b[this.pos] ?? 0)) this.pos++;
  }

  atEnd(): boolean {
    return this.pos >= this.b.length;
  }

  private fail(c: number, context: string): never {
    throw new GoJsonError(`invalid character ${quoteChar(c)} ${context}`);
  }

  value(): JsonValue {
    this.skipSpace();
    const c = this.peek();
    switch (c) {
      case 0x7b:
        return this.object();
      case 0x5b:
        return this.array();
      case 0x22:
        return this.string();
      case 0x74:
        this.literal('true');
        return { kind: 'bool', value: true };
      case 0x66:
        this.literal('false');
        return { kind: 'bool', value: false };
      case 0x6e:
        this.literal('null');
        return { kind: 'null' };
      default:
        if (c === 0x2d || isDigit(c)) return this.number();
        return this.fail(c, 'looking for beginning of value');
    }
  }

  private literal(word: string): void {
    this.pos++;
    for (let i = 1; i < word.length; i++) {
      const c = this.peek();
      const want = word.charCodeAt(i);
      if (c !== want) this.fail(c, `in literal ${word} (expecting ${quoteChar(want)})`);
      this.pos++;
    }
  }

  private object(): JsonValue {
    this.pos++;
    const entries: [string, JsonValue][] = [];
    this.skipSpace();
    if (this.peek() === 0x7d) {
      this.pos++;
      return { kind: 'object', entries };
    }
    for (;;) {
      this.skipSpace();
      const c = this.peek();
      if (c !== 0x22) this.fail(c, 'looking for beginning of object key string');
      const key = this.string();
      this.skipSpace();
      const colon = this.peek();
      if (colon !== 0x3a) this.fail(colon, 'after object key');
      this.pos++;
      entries.push([key.kind === 'string' ? key.value.toString('utf8') : '', this.value()]);
      this.skipSpace();
      const next = this.peek();
      this.pos++;
      if (next === 0x7d) return { kind: 'object', entries };
      if (next !== 0x2c) {
        this.pos--;
        this.fail(next, 'after object key:value pair');
      }
    }
  }

  private array(): JsonValue {
    this.pos++;
    const items: JsonValue[] = [];
    this.skipSpace();
    if (this.peek() === 0x5d) {
      this.pos++;
      return { kind: 'array', items };
    }
    for (;;) {
      items.push(this.value());
      this.skipSpace();
      const next = this.peek();
      this.pos++;
      if (next === 0x5d) return { kind: 'array', items };
      if (next !== 0x2c) {
        this.pos--;
        this.fail(next, 'after array element');
      }
    }
  }

  private string(): JsonValue {
    const start = ++this.pos;
    const out: number[] = [];
    for (;;) {
      const c = this.peek();
      if (c === 0x22) {
        const raw = this.b.subarray(start, this.pos);
        this.pos++;
        return { kind: 'string', raw: Buffer.from(raw), value: Buffer.from(out) };
      }
      if (c < 0x20) this.fail(c, 'in string literal');
      this.pos++;
      if (c !== 0x5c) {
        out.push(c);
        continue;
      }
      const e = this.peek();
      this.pos++;
      switch (e) {
        case 0x22:
        case 0x5c:
        case 0x2f:
          out.push(e);
          break;
        case 0x62:
          out.push(0x08);
          break;
        case 0x66:
          out.push(0x0c);
          break;
        case 0x6e:
          out.push(0x0a);
          break;
        case 0x72:
          out.push(0x0d);
          break;
        case 0x74:
          out.push(0x09);
          break;
        case 0x75: {
          let cp = this.hex4();
          if (cp >= 0xd800 && cp < 0xdc00) {
            // A high surrogate combines with a following \u low surrogate; alone it is U+FFFD.
            const save = this.pos;
            if (this.b[this.pos] === 0x5c && this.b[this.pos + 1] === 0x75) {
              this.pos += 2;
              const lo = this.hex4();
              if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
              else {
                this.pos = save;
                cp = 0xfffd;
              }
            } else cp = 0xfffd;
          } else if (cp >= 0xdc00 && cp < 0xe000) cp = 0xfffd;
          for (const byte of Buffer.from(String.fromCodePoint(cp), 'utf8')) out.push(byte);
          break;
        }
        default:
          this.pos--;
          this.fail(e, 'in string escape code');
      }
    }
  }

  private hex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.peek();
      if (!isHex(c)) this.fail(c, 'in \\u hexadecimal character escape');
      v = v * 16 + parseInt(String.fromCharCode(c), 16);
      this.pos++;
    }
    return v;
  }

  private number(): JsonValue {
    const start = this.pos;
    const at = (): number | undefined => this.b[this.pos];
    if (at() === 0x2d) {
      this.pos++;
      const c = this.peek();
      if (!isDigit(c)) this.fail(c, 'in numeric literal');
    }
    if (at() === 0x30) this.pos++;
    else while (at() !== undefined && isDigit(at() ?? 0)) this.pos++;
    if (at() === 0x2e) {
      this.pos++;
      const c = this.peek();
      if (!isDigit(c)) this.fail(c, 'after decimal point in numeric literal');
      while (at() !== undefined && isDigit(at() ?? 0)) this.pos++;
    }
    if (at() === 0x65 || at() === 0x45) {
      this.pos++;
      let c = this.peek();
      if (c === 0x2b || c === 0x2d) {
        this.pos++;
        c = this.peek();
      }
      if (!isDigit(c)) this.fail(c, 'in exponent of numeric literal');
      while (at() !== undefined && isDigit(at() ?? 0)) this.pos++;
    }
    return { kind: 'number', raw: this.b.subarray(start, this.pos).toString('latin1') };
  }
}

/** Parses a whole document as json.Unmarshal does (one value, then only white space). */
export function parseDocument(b: Buffer): JsonValue {
  const r = new JsonReader(b);
  let v: JsonValue;
  try {
    v = r.value();
  } catch (err) {
    if (err instanceof EndOfInput) throw new GoJsonError('unexpected end of JSON input');
    throw err;
  }
  r.skipSpace();
  if (!r.atEnd()) throw new GoJsonError(`invalid character ${quoteChar(b[r.pos] ?? 0)} after top-level value`);
  return v;
}

/**
 * Reads a sequence of JSON values from a body that arrives in pieces, as json.Decoder does: values
 * may be separated by white space or nothing; the input ending inside a value is "unexpected EOF".
 */
export class JsonStreamDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;

  /** Adds received bytes. */
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Marks the end of the body. */
  end(): void {
    this.ended = true;
  }

  /**
   * The next complete value; 'more' when more bytes are needed; 'eof' at the end of the body with
   * nothing but white space left. Throws GoJsonError on malformed input.
   */
  next(): JsonValue | 'more' | 'eof' {
    const r = new JsonReader(this.buf);
    r.skipSpace();
    if (r.atEnd()) {
      this.buf = Buffer.alloc(0);
      return this.ended ? 'eof' : 'more';
    }
    let v: JsonValue;
    try {
      v = r.value();
    } catch (err) {
      if (!(err instanceof EndOfInput)) throw err;
      if (this.ended) throw new GoJsonError('unexpected EOF');
      return 'more';
    }
    // A number at the very end may continue in the next piece.
    if (v.kind === 'number' && r.atEnd() && !this.ended) return 'more';
    this.buf = this.buf.subarray(r.pos);
    return v;
  }
}

// ------------------------------------------------------------------------------------------------
// base64 (Go's StdEncoding: padding required, CR and LF ignored)

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(256).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Decodes standard base64 as Go's base64.StdEncoding does, with its error positions. */
export function decodeBase64Std(src: Buffer): Buffer {
  const out: number[] = [];
  let si = 0;
  const isNl = (c: number | undefined): boolean => c === 0x0a || c === 0x0d;
  const bad = (at: number): never => {
    throw new GoJsonError(`illegal base64 data at input byte ${at}`);
  };
  while (si < src.length) {
    const q: number[] = [];
    let dlen = 4;
    let finished = false;
    for (let j = 0; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) {
          finished = true;
          dlen = 0;
          break;
        }
        bad(si - j);
      }
      const c = src[si] ?? 0;
      si++;
      const v = B64_INDEX[c] ?? -1;
      if (v >= 0) {
        q.push(v);
        continue;
      }
      if (isNl(c)) {
        j--;
        continue;
      }
      if (c !== 0x3d) bad(si - 1);
      // Padding.
      if (j < 2) bad(si - 1);
      if (j === 2) {
        while (si < src.length && isNl(src[si])) si++;
        if (si === src.length) bad(src.length);
        if (src[si] !== 0x3d) bad(si - 1);
        si++;
      }
      while (si < src.length && isNl(src[si])) si++;
      if (si < src.length) bad(si);
      dlen = j;
      finished = true;
      break;
    }
    const [a = 0, b = 0, c = 0, d = 0] = q;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    if (dlen >= 2) out.push((n >> 16) & 0xff);
    if (dlen >= 3) out.push((n >> 8) & 0xff);
    if (dlen >= 4) out.push(n & 0xff);
    if (finished) break;
  }
  return Buffer.from(out);
}

// ------------------------------------------------------------------------------------------------
// JSON → message

const INT_RANGES: Record<string, { min: bigint; max: bigint }> = {
  int32: { min: -(2n ** 31n), max: 2n ** 31n - 1n },
  sint32: { min: -(2n ** 31n), max: 2n ** 31n - 1n },
  sfixed32: { min: -(2n ** 31n), max: 2n ** 31n - 1n },
  uint32: { min: 0n, max: 2n ** 32n - 1n },
  fixed32: { min: 0n, max: 2n ** 32n - 1n },
  int64: { min: -(2n ** 63n), max: 2n ** 63n - 1n },
  sint64: { min: -(2n ** 63n), max: 2n ** 63n - 1n },
  sfixed64: { min: -(2n ** 63n), max: 2n ** 63n - 1n },
  uint64: { min: 0n, max: 2n ** 64n - 1n },
  fixed64: { min: 0n, max: 2n ** 64n - 1n },
};

const GO_INT_TYPE: Record<string, string> = {
  int32: 'int32',
  sint32: 'int32',
  sfixed32: 'int32',
  uint32: 'uint32',
  fixed32: 'uint32',
  int64: 'int64',
  sint64: 'int64',
  sfixed64: 'int64',
  uint64: 'uint64',
  fixed64: 'uint64',
};

const IS_64 = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);

/** The name Go's generated code gives a message or enum ("etcdserverpb.RangeRequest_SortOrder"). */
export function goTypeName(t: protobuf.ReflectionObject): string {
  const nested: string[] = [];
  let o: protobuf.ReflectionObject | null = t;
  while (o !== null && (o instanceof protobuf.Type || o instanceof protobuf.Enum)) {
    nested.unshift(o.name);
    o = o.parent;
  }
  const pkg = o === null ? '' : o.fullName.replace(/^\./, '');
  return pkg === '' ? nested.join('_') : `${pkg}.${nested.join('_')}`;
}

function jsonKind(v: JsonValue): string {
  return v.kind === 'null' ? 'null' : v.kind;
}

function cannot(v: JsonValue, goType: string, literal = false): GoJsonError {
  const what = literal && v.kind === 'number' ? `number ${v.raw}` : jsonKind(v);
  return new GoJsonError(`json: cannot unmarshal ${what} into Go value of type ${goType}`);
}

/** lowerCamel JSON name of a proto field, as protoc derives it. */
export function jsonName(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()).replace(/_/g, '');
}

function numericValue(v: JsonValue, goType: string): JsonValue {
  // jsonpb accepts a number given as a string: the text between the quotes is read as JSON.
  if (v.kind !== 'string') return v;
  const inner = parseDocument(v.raw);
  if (inner.kind !== 'number') throw cannot(inner, goType);
  return inner;
}

function parseInteger(v: JsonValue, fieldType: string, goType: string): string | number {
  const n = numericValue(v, goType);
  if (n.kind !== 'number') throw cannot(n, goType);
  if (!/^-?\d+$/.test(n.raw)) throw cannot(n, goType, true);
  const big = BigInt(n.raw);
  const range = INT_RANGES[fieldType];
  if (range !== undefined && (big < range.min || big > range.max)) throw cannot(n, goType, true);
  return IS_64.has(fieldType) ? big.toString() : Number(big);
}

function scalarValue(field: protobuf.Field, v: JsonValue): unknown {
  const t = field.type;
  switch (t) {
    case 'bool':
      if (v.kind !== 'bool') throw cannot(v, 'bool');
      return v.value;
    case 'string':
      if (v.kind !== 'string') throw cannot(v, 'string');
      return v.value.toString('utf8');
    case 'bytes':
      if (v.kind === 'string') return decodeBase64Std(v.value);
      if (v.kind === 'array') {
        return Buffer.from(
          v.items.map((it) => {
            if (it.kind !== 'number') throw cannot(it, 'uint8');
            if (!/^\d+$/.test(it.raw) || Number(it.raw) > 255) throw cannot(it, 'uint8', true);
            return Number(it.raw);
          }),
        );
      }
      throw cannot(v, '[]uint8');
    case 'double':
    case 'float': {
      const goType = t === 'double' ? 'float64' : 'float32';
      const n = numericValue(v, goType);
      if (n.kind !== 'number') throw cannot(n, goType);
      return Number(n.raw);
    }
    default: {
      const goType = GO_INT_TYPE[t];
      if (goType === undefined) throw new GoJsonError(`unsupported field type ${t}`);
      return parseInteger(v, t, goType);
    }
  }
}

function enumValue(e: protobuf.Enum, v: JsonValue): number {
  const goType = goTypeName(e);
  if (v.kind === 'string') {
    const name = v.raw.toString('utf8');
    const n = Object.prototype.hasOwnProperty.call(e.values, name) ? e.values[name] : undefined;
    if (typeof n !== 'number') throw new GoJsonError(`unknown value ${goQuote(name)} for enum ${goType}`);
    return n;
  }
  if (v.kind !== 'number') throw cannot(v, goType);
  return Number(parseInteger(v, 'int32', goType));
}

function fieldValue(field: protobuf.Field, v: JsonValue): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return jsonToMessage(rt, v);
  if (rt instanceof protobuf.Enum) return enumValue(rt, v);
  return scalarValue(field, v);
}

/**
 * Converts a parsed JSON value to a plain object of message type `t` that `t.encode` accepts
 * (64-bit integers as decimal strings, bytes as Buffers). Throws GoJsonError with Go's text.
 */
export function jsonToMessage(t: protobuf.Type, v: JsonValue): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (v.kind === 'null') return out;
  if (v.kind !== 'object') throw cannot(v, 'map[string]json.RawMessage');
  const given = new Map<string, JsonValue>();
  for (const [k, val] of v.entries) given.set(k, val);
  for (const field of t.fieldsArray) {
    field.resolve();
    const camel = jsonName(field.name);
    const raw = given.get(camel) ?? given.get(field.name);
    if (raw === undefined || raw.kind === 'null') continue;
    if (field.map) throw new GoJsonError(`map field ${field.name} is not supported`);
    if (field.repeated) {
      if (raw.kind !== 'array') throw cannot(raw, '[]json.RawMessage');
      out[field.name] = raw.items.map((it) => fieldValue(field, it));
      continue;
    }
    out[field.name] = fieldValue(field, raw);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// message → JSON

/** A 64-bit value as protobufjs decodes it (number, or Long-like with toString). */
type Wide = number | { toString(): string; isZero?: () => boolean };

function isZeroScalar(field: protobuf.Field, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'string') return v === '';
  if (typeof v === 'number') return v === 0;
  if (v instanceof Uint8Array) return v.length === 0;
  if (field.type !== 'bytes' && typeof v === 'object') {
    const w = v as { isZero?: () => boolean };
    if (typeof w.isZero === 'function') return w.isZero();
  }
  return false;
}

/** Escapes a string as Go's encoding/json does (HTML-safe). */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    switch (c) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += '\\\\';
        continue;
      case 0x0a:
        out += '\\n';
        continue;
      case 0x0d:
        out += '\\r';
        continue;
      case 0x09:
        out += '\\t';
        continue;
      default:
        break;
    }
    if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    } else {
      out += s[i];
    }
  }
  return `${out}"`;
}

function scalarJson(field: protobuf.Field, v: unknown): string {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    const n = Number(v);
    const name = rt.valuesById[n];
    return name === undefined ? String(n) : goJsonString(name);
  }
  switch (field.type) {
    case 'bool':
      return v === true ? 'true' : 'false';
    case 'string':
      return goJsonString(String(v));
    case 'bytes':
      return `"${Buffer.from(v as Uint8Array).toString('base64')}"`;
    case 'double':
    case 'float': {
      const n = Number(v);
      if (Number.isNaN(n)) return '"NaN"';
      if (!Number.isFinite(n)) return n > 0 ? '"Infinity"' : '"-Infinity"';
      return String(n);
    }
    default:
      if (IS_64.has(field.type)) {
        const w = v as Wide;
        if (typeof w === 'number') return `"${field.type.startsWith('u') || field.type === 'fixed64' ? BigInt.asUintN(64, BigInt(w)) : BigInt(w)}"`;
        return `"${w.toString()}"`;
      }
      return String(Number(v));
  }
}

/** Renders a decoded message of type `t` as the gateway's JSON (see the module comment). */
export function messageToJson(t: protobuf.Type, m: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const field of t.fieldsArray) {
    field.resolve();
    if (!Object.prototype.hasOwnProperty.call(m, field.name)) continue;
    const v = m[field.name];
    if (v === null || v === undefined) continue;
    const key = goJsonString(field.name);
    const rt = field.resolvedType;
    if (field.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      const items = arr.map((it) => (rt instanceof protobuf.Type ? messageToJson(rt, it as Record<string, unknown>) : scalarJson(field, it)));
      parts.push(`${key}:[${items.join(',')}]`);
      continue;
    }
    if (rt instanceof protobuf.Type) {
      parts.push(`${key}:${messageToJson(rt, v as Record<string, unknown>)}`);
      continue;
    }
    // A oneof member present on the wire is written even at its zero value, as jsonpb does.
    if (field.partOf === null && isZeroScalar(field, v)) continue;
    parts.push(`${key}:${scalarJson(field, v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** The HTTP status grpc-gateway answers for a gRPC status code. */
export function httpStatusFromCode(code: number): number {
  switch (code) {
    case 0:
      return 200;
    case 1:
      return 408;
    case 2:
      return 500;
    case 3:
      return 400;
    case 4:
      return 504;
    case 5:
      return 404;
    case 6:
      return 409;
    case 7:
      return 403;
    case 8:
      return 429;
    case 9:
      return 400;
    case 10:
      return 409;
    case 11:
      return 400;
    case 12:
      return 501;
    case 13:
      return 500;
    case 14:
      return 503;
    case 15:
      return 500;
    case 16:
      return 401;
    default:
      return 500;
  }
}
