/**
 * HPACK, the header compression of HTTP/2 (RFC 7541): integer and string primitives, the static
 * table, the dynamic table with size-based eviction, a decoder and an encoder.
 *
 * Header names and values are carried as latin1 strings: one character per octet, so any octet
 * sequence survives decode → encode unchanged, and `string.length` is the octet length used for
 * table sizes.
 *
 * Worked example (RFC 7541 C.3.1): the block 82 86 84 41 0f "www.example.com" decodes to
 * `:method: GET` (static 2), `:scheme: http` (static 6), `:path: /` (static 4) and
 * `:authority: www.example.com` (literal with incremental indexing, name from static 1), which
 * becomes dynamic entry 62 with size 10 + 15 + 32 = 57.
 */
import { HuffmanError, huffmanDecode, huffmanEncodeInto, huffmanEncodedLength } from './hpack-huffman';

/**
 * How a field is (or is to be) represented: added to the dynamic table, not added, or never added
 * by any intermediary (sensitive values, RFC 7541 §6.2.3).
 */
export type HeaderIndexing = 'incremental' | 'none' | 'never';

/** One header field. `name` and `value` are latin1 strings (one character per octet). */
export interface HeaderField {
  name: string;
  value: string;
  /** Representation hint: the decoder reports what the sender used; the encoder honours it (default 'incremental'). */
  indexing?: HeaderIndexing;
}

/** A malformed header block (a COMPRESSION_ERROR in HTTP/2 terms); the connection cannot continue. */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}

/** The default and initial value of SETTINGS_HEADER_TABLE_SIZE, in octets. */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

/**
 * Default bound on a decoded header list, in octets counted as for SETTINGS_MAX_HEADER_LIST_SIZE
 * (name + value + 32 per field): 1 MiB. Indexed fields make decoding amplify (one octet can stand
 * for a 4 KiB entry), so a decoder must stop somewhere.
 */
export const DEFAULT_MAX_HEADER_LIST_SIZE = 1024 * 1024;

/** Octets an entry takes in a dynamic table: name + value + 32 (RFC 7541 §4.1). */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

/** The static table (RFC 7541 Appendix A); index 1 is element 0. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

const STATIC_COUNT = STATIC_TABLE.length; // 61

function pairKey(name: string, value: string): string {
  return `${name.length}:${name}${value}`;
}

/** First static index of each (name, value) pair and of each name. */
const STATIC_BY_PAIR = new Map<string, number>();
const STATIC_BY_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  const k = pairKey(name, value);
  if (!STATIC_BY_PAIR.has(k)) STATIC_BY_PAIR.set(k, i + 1);
  if (!STATIC_BY_NAME.has(name)) STATIC_BY_NAME.set(name, i + 1);
});

/** Largest integer accepted by the decoder; far above any legitimate length, index or table size. */
const MAX_INTEGER = 2 ** 32 - 1;

/**
 * Decodes an HPACK integer with an N-bit prefix (RFC 7541 §5.1) starting at `buf[offset]` (whose
 * top 8-N bits are ignored). Returns the value and the offset after it. Throws HpackError when the
 * data ends early or the value exceeds 2^32-1.
 */
export function decodeInteger(buf: Uint8Array, offset: number, prefixBits: number): { value: number; next: number } {
  const first = buf[offset];
  if (first === undefined) throw new HpackError('header block ends inside an integer');
  const max = (1 << prefixBits) - 1;
  let value = first & max;
  let pos = offset + 1;
  if (value < max) return { value, next: pos };
  let mul = 1;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined) throw new HpackError('header block ends inside an integer');
    value += (b & 0x7f) * mul;
    if (value > MAX_INTEGER) throw new HpackError('integer overflow in header block');
    if ((b & 0x80) === 0) return { value, next: pos };
    mul *= 128;
  }
}

/**
 * Appends an HPACK integer with an N-bit prefix to `out`; `firstByteFlags` fills the bits above
 * the prefix of the first byte.
 */
export function encodeInteger(out: number[], value: number, prefixBits: number, firstByteFlags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByteFlags | value);
    return;
  }
  out.push(firstByteFlags | max);
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

/**
 * Decodes an HPACK string literal (RFC 7541 §5.2) at `offset`: H flag, 7-bit prefixed length,
 * octets (Huffman-decoded when H is set). Returns it as a latin1 string with the offset after it.
 */
export function decodeString(buf: Uint8Array, offset: number): { value: string; next: number } {
  const first = buf[offset];
  if (first === undefined) throw new HpackError('header block ends inside a string');
  const huffman = (first & 0x80) !== 0;
  const { value: len, next } = decodeInteger(buf, offset, 7);
  const end = next + len;
  if (end > buf.length) throw new HpackError('string literal longer than the header block');
  const raw = buf.subarray(next, end);
  if (!huffman) return { value: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1'), next: end };
  try {
    return { value: huffmanDecode(raw).toString('latin1'), next: end };
  } catch (err) {
    if (err instanceof HuffmanError) throw new HpackError(err.message);
    throw err;
  }
}

/**
 * Appends an HPACK string literal. With `huffman`, the Huffman form is used whenever it is not
 * longer than the raw octets.
 */
export function encodeString(out: number[], value: string, huffman: boolean): void {
  const raw = Buffer.from(value, 'latin1');
  if (huffman) {
    const hlen = huffmanEncodedLength(raw);
    if (hlen <= raw.length) {
      encodeInteger(out, hlen, 7, 0x80);
      const tmp = new Uint8Array(hlen);
      huffmanEncodeInto(raw, tmp, 0);
      for (let i = 0; i < hlen; i++) out.push(tmp[i] ?? 0);
      return;
    }
  }
  encodeInteger(out, raw.length, 7, 0);
  for (let i = 0; i < raw.length; i++) out.push(raw[i] ?? 0);
}

/** One dynamic table entry; `seq` counts insertions from 1 and never repeats. */
interface DynamicEntry {
  name: string;
  value: string;
  seq: number;
}

/**
 * The dynamic table (RFC 7541 §2.3.2, §4): newest entry first in index order, evicted oldest
 * first so that size ≤ maxSize always holds.
 */
export class DynamicTable {
  /** Oldest first; the newest entry is the last element and has index 62. */
  private readonly entries: DynamicEntry[] = [];
  private bytes = 0;
  private maxBytes: number;
  private inserted = 0;
  private readonly byPair = new Map<string, number>();
  private readonly byName = new Map<string, number>();

  /** Creates an empty table with the given maximum size in octets. */
  constructor(maxSize: number) {
    this.maxBytes = maxSize;
  }

  /** Current size in octets (sum of entry sizes); invariant: size ≤ maxSize. */
  get size(): number {
    return this.bytes;
  }

  /** Current maximum size in octets. */
  get maxSize(): number {
    return this.maxBytes;
  }

  /** Number of entries. */
  get length(): number {
    return this.entries.length;
  }

  /** Sets the maximum size, evicting the oldest entries until the table fits. */
  setMaxSize(maxSize: number): void {
    this.maxBytes = maxSize;
    this.evictTo(maxSize);
  }

  /**
   * Adds an entry as the newest, evicting first; an entry larger than the maximum size empties
   * the table and is not added (RFC 7541 §4.4).
   */
  add(name: string, value: string): void {
    const size = entrySize(name, value);
    if (size > this.maxBytes) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.maxBytes - size);
    const seq = ++this.inserted;
    this.entries.push({ name, value, seq });
    this.bytes += size;
    this.byPair.set(pairKey(name, value), seq);
    this.byName.set(name, seq);
  }

  /** The entry at dynamic index `i` (1 = newest), or undefined. */
  at(i: number): readonly [string, string] | undefined {
    const e = this.entries[this.entries.length - i];
    return e === undefined || i < 1 ? undefined : [e.name, e.value];
  }

  /** The entries, newest first (for inspection). */
  list(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e !== undefined) out.push([e.name, e.value]);
    }
    return out;
  }

  /** Dynamic index (1 = newest) of the newest entry equal to (name, value), or 0. */
  findPair(name: string, value: string): number {
    return this.indexOfSeq(this.byPair.get(pairKey(name, value)));
  }

  /** Dynamic index (1 = newest) of the newest entry with this name, or 0. */
  findName(name: string): number {
    return this.indexOfSeq(this.byName.get(name));
  }

  private indexOfSeq(seq: number | undefined): number {
    if (seq === undefined) return 0;
    return this.inserted - seq + 1;
  }

  private evictTo(limit: number): void {
    while (this.bytes > limit) {
      const e = this.entries.shift();
      if (e === undefined) break;
      this.bytes -= entrySize(e.name, e.value);
      const k = pairKey(e.name, e.value);
      if (this.byPair.get(k) === e.seq) this.byPair.delete(k);
      if (this.byName.get(e.name) === e.seq) this.byName.delete(e.name);
    }
  }
}

/**
 * Decodes header blocks of one direction of one connection, keeping the dynamic table the
 * sender's encoder built. Blocks must be fed in the order they were sent.
 */
export class HpackDecoder {
  /** The receiver's dynamic table. */
  readonly table: DynamicTable;
  private limit: number;
  private readonly maxListSize: number;

  /**
   * `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE the receiver announced (default 4096); table
   * size updates above it are errors. `maxHeaderListSize`: a block whose decoded fields add up to
   * more (name + value + 32 each) is an error (default 1 MiB).
   */
  constructor(maxTableSize = DEFAULT_HEADER_TABLE_SIZE, maxHeaderListSize = DEFAULT_MAX_HEADER_LIST_SIZE) {
    this.limit = maxTableSize;
    this.maxListSize = maxHeaderListSize;
    this.table = new DynamicTable(maxTableSize);
  }

  /** Changes the announced limit (a new SETTINGS_HEADER_TABLE_SIZE); shrinks the table if needed. */
  setLimit(maxTableSize: number): void {
    this.limit = maxTableSize;
    if (this.table.maxSize > maxTableSize) this.table.setMaxSize(maxTableSize);
  }

  /**
   * Decodes one complete header block (HEADERS + CONTINUATION fragments joined) into its fields,
   * in order, each tagged with the representation the sender used. Throws HpackError on any
   * malformed input or when the list exceeds the size bound; after that the decoder's state is
   * undefined and the connection must end.
   */
  decode(block: Uint8Array): HeaderField[] {
    const out: HeaderField[] = [];
    let listSize = 0;
    const emit = (f: HeaderField): void => {
      listSize += entrySize(f.name, f.value);
      if (listSize > this.maxListSize) throw new HpackError(`header list larger than ${this.maxListSize} octets`);
      out.push(f);
    };
    let pos = 0;
    while (pos < block.length) {
      const b = block[pos] ?? 0;
      if ((b & 0x80) !== 0) {
        const { value: index, next } = decodeInteger(block, pos, 7);
        if (index === 0) throw new HpackError('indexed header field with index 0');
        const [name, value] = this.lookup(index);
        emit({ name, value, indexing: 'incremental' });
        pos = next;
      } else if ((b & 0xc0) === 0x40) {
        const f = this.literal(block, pos, 6, 'incremental');
        this.table.add(f.field.name, f.field.value);
        emit(f.field);
        pos = f.next;
      } else if ((b & 0xe0) === 0x20) {
        if (out.length > 0) throw new HpackError('dynamic table size update after a header field');
        const { value: size, next } = decodeInteger(block, pos, 5);
        if (size > this.limit) throw new HpackError(`dynamic table size update to ${size} exceeds the limit ${this.limit}`);
        this.table.setMaxSize(size);
        pos = next;
      } else {
        const f = this.literal(block, pos, 4, (b & 0x10) !== 0 ? 'never' : 'none');
        emit(f.field);
        pos = f.next;
      }
    }
    return out;
  }

  private literal(block: Uint8Array, pos: number, prefixBits: number, indexing: HeaderIndexing): { field: HeaderField; next: number } {
    const { value: nameIndex, next } = decodeInteger(block, pos, prefixBits);
    let name: string;
    let at = next;
    if (nameIndex === 0) {
      const s = decodeString(block, at);
      name = s.value;
      at = s.next;
    } else {
      name = this.lookup(nameIndex)[0];
    }
    const v = decodeString(block, at);
    return { field: { name, value: v.value, indexing }, next: v.next };
  }

  private lookup(index: number): readonly [string, string] {
    if (index <= STATIC_COUNT) {
      const e = STATIC_TABLE[index - 1];
      if (e === undefined) throw new HpackError(`invalid header index ${index}`);
      return e;
    }
    const e = this.table.at(index - STATIC_COUNT);
    if (e === undefined) throw new HpackError(`header index ${index} is beyond the dynamic table`);
    return e;
  }
}

/** Options of an HpackEncoder. */
export interface HpackEncoderOptions {
  /** Dynamic table size both ends start with (the peer's SETTINGS_HEADER_TABLE_SIZE); default 4096. */
  maxTableSize?: number;
  /** Use the Huffman code for literals whenever it is not longer (default true). */
  huffman?: boolean;
}

/**
 * Encodes header blocks for one direction of one connection. Fields marked 'incremental' (the
 * default) are sent as an index when the exact pair is in a table (static first), otherwise as a
 * literal added to the dynamic table, naming the field by index when possible (static first);
 * 'none' and 'never' fields are sent as literals without indexing / never indexed. The peer's
 * decoder mirrors this encoder's dynamic table, so blocks must be sent in the order encoded.
 */
export class HpackEncoder {
  /** The encoder's view of the dynamic table (identical to the peer decoder's). */
  readonly table: DynamicTable;
  private readonly huffman: boolean;
  /** Smallest and last size set since the previous block; emitted as size updates at the next block. */
  private pendingMin: number | undefined;
  private pendingLast: number | undefined;

  /** Creates an encoder; see HpackEncoderOptions. */
  constructor(opts: HpackEncoderOptions = {}) {
    this.table = new DynamicTable(opts.maxTableSize ?? DEFAULT_HEADER_TABLE_SIZE);
    this.huffman = opts.huffman ?? true;
  }

  /**
   * Changes the dynamic table size (must be ≤ the peer's SETTINGS_HEADER_TABLE_SIZE). The change
   * is announced at the start of the next block (the smallest size set meanwhile first, so the
   * peer evicts what this encoder evicted).
   */
  setMaxTableSize(size: number): void {
    this.pendingMin = this.pendingMin === undefined ? size : Math.min(this.pendingMin, size);
    this.pendingLast = size;
    this.table.setMaxSize(size);
  }

  /** Encodes one header block. */
  encode(fields: readonly HeaderField[]): Buffer {
    const out: number[] = [];
    if (this.pendingLast !== undefined) {
      const min = this.pendingMin ?? this.pendingLast;
      if (min < this.pendingLast) encodeInteger(out, min, 5, 0x20);
      encodeInteger(out, this.pendingLast, 5, 0x20);
      this.pendingMin = undefined;
      this.pendingLast = undefined;
    }
    for (const f of fields) this.encodeField(out, f);
    return Buffer.from(out);
  }

  private encodeField(out: number[], f: HeaderField): void {
    const indexing = f.indexing ?? 'incremental';
    if (indexing === 'incremental') {
      const full = this.findPair(f.name, f.value);
      if (full > 0) {
        encodeInteger(out, full, 7, 0x80);
        return;
      }
    }
    const nameIndex = this.findName(f.name);
    let flags: number;
    let prefix: number;
    let add = false;
    if (indexing === 'incremental' && entrySize(f.name, f.value) <= this.table.maxSize) {
      flags = 0x40;
      prefix = 6;
      add = true;
    } else {
      flags = indexing === 'never' ? 0x10 : 0x00;
      prefix = 4;
    }
    encodeInteger(out, nameIndex, prefix, flags);
    if (nameIndex === 0) encodeString(out, f.name, this.huffman);
    encodeString(out, f.value, this.huffman);
    if (add) this.table.add(f.name, f.value);
  }

  private findPair(name: string, value: string): number {
    const s = STATIC_BY_PAIR.get(pairKey(name, value));
    if (s !== undefined) return s;
    const d = this.table.findPair(name, value);
    return d > 0 ? STATIC_COUNT + d : 0;
  }

  private findName(name: string): number {
    const s = STATIC_BY_NAME.get(name);
    if (s !== undefined) return s;
    const d = this.table.findName(name);
    return d > 0 ? STATIC_COUNT + d : 0;
  }
}
