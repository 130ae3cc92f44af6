/**
 * HPACK (RFC 7541) as the native gRPC server needs it, tuned for the request path:
 *
 * - HeaderBlockDecoder decodes a request header block into two reusable arrays (names, values)
 *   without creating an object per field; strings that come from a table are shared, not copied.
 *   One decoder per connection keeps the client's dynamic table.
 * - ResponseHeaderEncoder encodes the few header blocks a gRPC server sends: response headers
 *   (`:status: 200`, `content-type: application/grpc`) and trailers (`grpc-status`,
 *   `grpc-message`). `content-type` and `grpc-status` are literals with incremental indexing, so
 *   from the second response on they are one-octet indexed fields; the two common blocks are
 *   cached and reused until the dynamic table changes.
 *
 * Example: the first response headers are 88 5f 8b <Huffman "application/grpc"> (13 octets); that
 * adds dynamic entry 62, and every later response header block is 88 be (2 octets).
 */
import { huffmanDecode, HuffmanError } from '../hpack-huffman';
import { DEFAULT_HEADER_TABLE_SIZE, HpackError, STATIC_TABLE, encodeInteger, encodeString, entrySize } from '../hpack';

const STATIC_COUNT = STATIC_TABLE.length;

/** Largest integer the decoder accepts (indexes, lengths and sizes are far below it). */
const MAX_INTEGER = 2 ** 32 - 1;

/**
 * Decodes the header blocks one client sends on one connection (RFC 7541 §3), keeping its dynamic
 * table. Blocks must be decoded in the order they arrived, every one of them (also blocks of
 * streams that are refused), or the table goes out of step with the client's.
 */
export class HeaderBlockDecoder {
  /** Field names of the last decoded block (entries `0..count-1`; the array is reused). */
  readonly names: string[] = [];
  /** Field values of the last decoded block, parallel to `names`. */
  readonly values: string[] = [];
  /** Number of fields in the last decoded block. */
  count = 0;
  /** Dynamic table, oldest first from `head`; the newest entry is the last element. */
  private readonly tNames: string[] = [];
  private readonly tValues: string[] = [];
  private head = 0;
  private tableSize = 0;
  private tableMax: number;
  /** The SETTINGS_HEADER_TABLE_SIZE this side announced: the ceiling of size updates. */
  private readonly limit: number;
  /** Read position of the integer and string readers. */
  private pos = 0;

  /** `limit`: our SETTINGS_HEADER_TABLE_SIZE (default 4096 octets). */
  constructor(limit: number = DEFAULT_HEADER_TABLE_SIZE) {
    this.limit = limit;
    this.tableMax = limit;
  }

  /** Entries in the dynamic table (for tests and inspection). */
  get tableLength(): number {
    return this.tNames.length - this.head;
  }

  /** Current dynamic table size in octets (RFC 7541 §4.1). */
  get size(): number {
    return this.tableSize;
  }

  /**
   * Decodes the block `buf[start..end)` into `names`/`values`/`count`. At most `maxFields`
   * fields are accepted. Throws HpackError on malformed input (a COMPRESSION_ERROR: the
   * connection cannot continue, the table state is undefined).
   */
  decode(buf: Buffer, start: number, end: number, maxFields: number): void {
    const names = this.names;
    const values = this.values;
    let n = 0;
    let p = start;
    while (p < end) {
      const b = buf[p] as number;
      if ((b & 0x80) !== 0) {
        const index = this.readInt(buf, p, end, 7);
        p = this.pos;
        if (index === 0) throw new HpackError('indexed header field with index 0');
        if (n >= maxFields) throw new HpackError(`more than ${maxFields} header fields`);
        if (index <= STATIC_COUNT) {
          const e = STATIC_TABLE[index - 1] as readonly [string, string];
          names[n] = e[0];
          values[n] = e[1];
        } else {
          const j = this.dynamicSlot(index);
          names[n] = this.tNames[j] as string;
          values[n] = this.tValues[j] as string;
        }
        n++;
        continue;
      }
      if ((b & 0xe0) === 0x20) {
        if (n > 0) throw new HpackError('dynamic table size update after a header field');
        const size = this.readInt(buf, p, end, 5);
        p = this.pos;
        if (size > this.limit) throw new HpackError(`dynamic table size update to ${size} exceeds the limit ${this.limit}`);
        this.tableMax = size;
        this.evictTo(size);
        continue;
      }
      const incremental = (b & 0xc0) === 0x40;
      const nameIndex = this.readInt(buf, p, end, incremental ? 6 : 4);
      p = this.pos;
      let name: string;
      if (nameIndex === 0) {
        name = this.readString(buf, p, end);
        p = this.pos;
      } else if (nameIndex <= STATIC_COUNT) {
        name = (STATIC_TABLE[nameIndex - 1] as readonly [string, string])[0];
      } else {
        name = this.tNames[this.dynamicSlot(nameIndex)] as string;
      }
      const value = this.readString(buf, p, end);
      p = this.pos;
      if (n >= maxFields) throw new HpackError(`more than ${maxFields} header fields`);
      names[n] = name;
      values[n] = value;
      n++;
      if (incremental) this.add(name, value);
    }
    this.count = n;
  }

  /** Array position of dynamic index `index` (62 = newest); throws when beyond the table. */
  private dynamicSlot(index: number): number {
    const d = index - STATIC_COUNT;
    if (d > this.tNames.length - this.head) throw new HpackError(`header index ${index} is beyond the dynamic table`);
    return this.tNames.length - d;
  }

  private add(name: string, value: string): void {
    const size = entrySize(name, value);
    if (size > this.tableMax) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.tableMax - size);
    this.tNames.push(name);
    this.tValues.push(value);
    this.tableSize += size;
  }

  private evictTo(limit: number): void {
    const tn = this.tNames;
    const tv = this.tValues;
    while (this.tableSize > limit && this.head < tn.length) {
      this.tableSize -= entrySize(tn[this.head] as string, tv[this.head] as string);
      this.head++;
    }
    if (this.head > 32 && this.head * 2 > tn.length) {
      tn.splice(0, this.head);
      tv.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Reads an integer with an N-bit prefix at `p`; sets `pos` after it. */
  private readInt(buf: Uint8Array, p: number, end: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = (buf[p] as number) & max;
    p++;
    if (value < max) {
      this.pos = p;
      return value;
    }
    let mul = 1;
    for (;;) {
      if (p >= end) throw new HpackError('header block ends inside an integer');
      const c = buf[p++] as number;
      value += (c & 0x7f) * mul;
      if (value > MAX_INTEGER) throw new HpackError('integer overflow in header block');
      if ((c & 0x80) === 0) break;
      mul *= 128;
    }
    this.pos = p;
    return value;
  }

  /** Reads a string literal at `p` (Huffman-decoded when flagged) as latin1; sets `pos` after it. */
  private readString(buf: Buffer, p: number, end: number): string {
    if (p >= end) throw new HpackError('header block ends inside a string');
    const huffman = ((buf[p] as number) & 0x80) !== 0;
    const len = this.readInt(buf, p, end, 7);
    const from = this.pos;
    const to = from + len;
    if (to > end) throw new HpackError('string literal longer than the header block');
    this.pos = to;
    if (!huffman) return buf.toString('latin1', from, to);
    try {
      return huffmanDecode(buf.subarray(from, to)).toString('latin1');
    } catch (err) {
      if (err instanceof HuffmanError) throw new HpackError(err.message);
      throw err;
    }
  }
}

/** A header field our encoder sends as a literal without indexing (extra metadata). */
export interface ExtraField {
  name: string;
  value: string;
}

const STATUS_200 = 0x88; // indexed field, static index 8 (":status: 200")
const CONTENT_TYPE_INDEX = 31; // static name "content-type"
const STATUS_INDEX = 8; // static name ":status"
const CONTENT_TYPE = 'application/grpc';

/**
 * Encodes the header blocks one server sends on one connection (RFC 7541), mirroring the
 * client decoder's view of our dynamic table. Blocks must go on the wire in the order they are
 * encoded: encode a block only when it is written.
 */
export class ResponseHeaderEncoder {
  /** Dynamic table, oldest first from `head`. */
  private readonly tNames: string[] = [];
  private readonly tValues: string[] = [];
  private head = 0;
  private tableSize = 0;
  private tableMax = DEFAULT_HEADER_TABLE_SIZE;
  /** Changes whenever the dynamic table does; cached blocks are valid for one epoch. */
  private epoch = 0;
  /** Size updates to announce at the start of the next block (smallest, then final). */
  private pendingMin = -1;
  private pendingFinal = -1;
  private headersBlock: Buffer | undefined;
  private headersEpoch = -1;
  private okBlock: Buffer | undefined;
  private okEpoch = -1;

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed: our table uses min(value, 4096) from now on. */
  setPeerTableSize(value: number): void {
    const size = Math.min(value, DEFAULT_HEADER_TABLE_SIZE);
    if (size === this.tableMax && this.pendingFinal < 0) return;
    this.pendingMin = this.pendingMin < 0 ? size : Math.min(this.pendingMin, size);
    this.pendingFinal = size;
    this.tableMax = size;
    this.evictTo(size);
    this.epoch++;
  }

  /** Entries in our dynamic table (for tests). */
  get tableLength(): number {
    return this.tNames.length - this.head;
  }

  /** Response headers `:status: 200`, `content-type: application/grpc` (+ `extra` fields). */
  responseHeaders(extra?: readonly ExtraField[]): Buffer {
    const plain = extra === undefined || extra.length === 0;
    if (plain && this.headersEpoch === this.epoch && this.headersBlock !== undefined) return this.headersBlock;
    const epoch = this.epoch;
    const out = this.startBlock();
    const cacheable = plain && out.length === 0;
    out.push(STATUS_200);
    this.incremental(out, 'content-type', CONTENT_TYPE, CONTENT_TYPE_INDEX);
    if (!plain) this.extras(out, extra);
    const block = Buffer.from(out);
    // A block that changed the table cannot be replayed as is; the next one can.
    if (cacheable && epoch === this.epoch) {
      this.headersBlock = block;
      this.headersEpoch = epoch;
    }
    return block;
  }

  /**
   * Trailers ending a response that sent headers: `grpc-status` and, when not empty,
   * `grpc-message` (already percent-encoded), then `extra` fields.
   */
  trailers(code: number, encodedMessage: string, extra?: readonly ExtraField[]): Buffer {
    const plain = code === 0 && encodedMessage === '' && (extra === undefined || extra.length === 0);
    if (plain && this.okEpoch === this.epoch && this.okBlock !== undefined) return this.okBlock;
    const epoch = this.epoch;
    const out = this.startBlock();
    const cacheable = plain && out.length === 0;
    this.statusFields(out, code, encodedMessage);
    if (extra !== undefined) this.extras(out, extra);
    const block = Buffer.from(out);
    if (cacheable && epoch === this.epoch) {
      this.okBlock = block;
      this.okEpoch = epoch;
    }
    return block;
  }

  /**
   * A trailers-only response (RFC: one HEADERS frame with END_STREAM): `:status` (200 unless
   * `httpStatus` says otherwise), content-type, grpc-status and grpc-message.
   */
  trailersOnly(code: number, encodedMessage: string, httpStatus = 200): Buffer {
    const out = this.startBlock();
    if (httpStatus === 200) out.push(STATUS_200);
    else {
      encodeInteger(out, STATUS_INDEX, 4, 0x00);
      encodeString(out, String(httpStatus), true);
    }
    this.incremental(out, 'content-type', CONTENT_TYPE, CONTENT_TYPE_INDEX);
    this.statusFields(out, code, encodedMessage);
    return Buffer.from(out);
  }

  private statusFields(out: number[], code: number, encodedMessage: string): void {
    this.incremental(out, 'grpc-status', String(code), 0);
    if (encodedMessage !== '') {
      encodeInteger(out, 0, 4, 0x00);
      encodeString(out, 'grpc-message', true);
      encodeString(out, encodedMessage, true);
    }
  }

  private extras(out: number[], extra: readonly ExtraField[]): void {
    for (const f of extra) {
      encodeInteger(out, 0, 4, 0x00);
      encodeString(out, f.name, true);
      encodeString(out, f.value, true);
    }
  }

  /** Starts a block: the pending size updates, if any. */
  private startBlock(): number[] {
    const out: number[] = [];
    if (this.pendingFinal >= 0) {
      if (this.pendingMin < this.pendingFinal) encodeInteger(out, this.pendingMin, 5, 0x20);
      encodeInteger(out, this.pendingFinal, 5, 0x20);
      this.pendingMin = -1;
      this.pendingFinal = -1;
    }
    return out;
  }

  /**
   * Appends (name, value) as an indexed field when our table has it, else as a literal with
   * incremental indexing (name by static index `staticName` when not 0, else by dynamic index or
   * literally), adding it to the table when it fits.
   */
  private incremental(out: number[], name: string, value: string, staticName: number): void {
    const tn = this.tNames;
    const tv = this.tValues;
    let nameIndex = staticName;
    for (let j = tn.length - 1; j >= this.head; j--) {
      if (tn[j] !== name) continue;
      const index = STATIC_COUNT + (tn.length - j);
      if (tv[j] === value) {
        encodeInteger(out, index, 7, 0x80);
        return;
      }
      if (nameIndex === 0) nameIndex = index;
    }
    const fits = entrySize(name, value) <= this.tableMax;
    encodeInteger(out, nameIndex, fits ? 6 : 4, fits ? 0x40 : 0x00);
    if (nameIndex === 0) encodeString(out, name, true);
    encodeString(out, value, true);
    if (fits) {
      this.evictTo(this.tableMax - entrySize(name, value));
      tn.push(name);
      tv.push(value);
      this.tableSize += entrySize(name, value);
      this.epoch++;
    }
  }

  private evictTo(limit: number): void {
    const tn = this.tNames;
    const tv = this.tValues;
    while (this.tableSize > limit && this.head < tn.length) {
      this.tableSize -= entrySize(tn[this.head] as string, tv[this.head] as string);
      this.head++;
      this.epoch++;
    }
    if (this.head > 32 && this.head * 2 > tn.length) {
      tn.splice(0, this.head);
      tv.splice(0, this.head);
      this.head = 0;
    }
  }
}
