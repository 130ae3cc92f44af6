/**
 * A small protobuf-compatible binary writer and reader (varints, 64-bit integers, length-delimited
 * bytes). Used for the stored KeyValue records (which are mvccpb.KeyValue on the wire) and for the
 * internal request encoding inside Raft entries.
 */

const TWO32 = 0x1_0000_0000;
const MASK64 = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Growable byte writer. Reuse one with `reset()` on hot paths. */
export class Writer {
  private buf: Uint8Array;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  /** Empties the writer, keeping its buffer. */
  reset(): this {
    this.pos = 0;
    return this;
  }

  /** Number of bytes written. */
  get length(): number {
    return this.pos;
  }

  /** Bytes the writer holds before it must grow. */
  get capacity(): number {
    return this.buf.length;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** Writes an unsigned varint of a non-negative safe integer. */
  uvarint(v: number): this {
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  /** Writes a 64-bit integer (signed or unsigned, as two's complement) as a varint. */
  varint64(v: bigint): this {
    if (v >= 0n && v <= MAX_SAFE) return this.uvarint(Number(v));
    let u = v & MASK64;
    this.ensure(10);
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
    return this;
  }

  /** Writes a protobuf field tag. */
  tag(field: number, wireType: number): this {
    return this.uvarint(field * 8 + wireType);
  }

  /** Writes raw bytes. */
  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Writes a length-prefixed byte string. */
  bytes(b: Uint8Array): this {
    this.uvarint(b.length);
    return this.raw(b);
  }

  /** Writes one byte. */
  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  /** A copy of the written bytes. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /**
   * A copy of the written bytes as a Buffer; small ones come from Node's shared pool, so this is
   * cheaper than finish() for many short-lived messages.
   */
  finishBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    return out;
  }
}

/** Sequential reader over a byte array; throws RangeError on truncated or malformed input. */
export class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, private readonly end = buf.length) {}

  /** True when every byte was read. */
  done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads an unsigned varint that must fit a safe integer. */
  uvarint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw new RangeError('varint out of range');
        return result;
      }
      mul *= 0x80;
    }
    throw new RangeError('varint out of range');
  }

  /**
   * Reads a varint as a signed 64-bit integer. The low 49 bits are gathered as a number and the
   * rest (at most 3 more bytes) as a second one, so a value costs at most a few BigInts instead of
   * several per byte.
   */
  varint64(): bigint {
    const buf = this.buf;
    let lo = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      const b = buf[this.pos++]!;
      lo += (b & 0x7f) * mul;
      if (b < 0x80) return lo === 0 ? 0n : BigInt(lo);
      mul *= 0x80;
    }
    let hi = 0;
    for (let i = 0; i < 3; i++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      const b = buf[this.pos++]!;
      hi |= (b & 0x7f) << (7 * i);
      if (b < 0x80) return BigInt.asIntN(64, (BigInt(hi) << 49n) | BigInt(lo));
    }
    throw new RangeError('varint too long');
  }

  /** Reads a varint64 that must be a non-negative safe integer (revisions, counts). */
  safeVarint(): number {
    const v = this.varint64();
    if (v < 0n || v > MAX_SAFE) throw new RangeError('integer out of range');
    return Number(v);
  }

  /** Reads a length-prefixed byte string (a view, not a copy). */
  bytes(): Uint8Array {
    const n = this.uvarint();
    if (this.pos + n > this.end) throw new RangeError('truncated bytes');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Reads one byte. */
  byte(): number {
    if (this.pos >= this.end) throw new RangeError('truncated');
    return this.buf[this.pos++]!;
  }

  /** Skips a field of the given wire type. */
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const n = this.uvarint();
        this.pos += n;
        break;
      }
      case 5:
        this.pos += 4;
        break;
      default:
        throw new RangeError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new RangeError('truncated field');
  }
}

/** Splits a 64-bit unsigned number into (hi, lo) 32-bit halves. */
export function split64(v: number): [number, number] {
  return [Math.floor(v / TWO32), v >>> 0];
}
