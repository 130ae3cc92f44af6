/**
 * The static Huffman code of HPACK (RFC 7541, Appendix B).
 *
 * The code in the RFC is canonical: ordering the 257 symbols (the 256 octets and EOS) by code
 * length, then by symbol value, and counting upwards gives exactly the published codes. So the
 * whole table is determined by the code lengths below, and the codes are rebuilt from them once
 * at load time. Worked example: the shortest codes are 5 bits long and belong to '0', '1', '2',
 * 'a', 'c', 'e', 'i', 'o', 's', 't' (in symbol order), so '0' is 00000, '1' is 00001, ... and
 * 't' is 01001; the first 6-bit code continues from (01001 + 1) << 1 = 010100, which is ' '.
 */

/** Code length in bits of each symbol 0..255, then of EOS (index 256). */
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 0x20 ' ' .. '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 0x30 '0' .. '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 0x40 '@' .. 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 0x50 'P' .. '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 0x60 '`' .. 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 0x70 'p' .. 0x7f
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
  30, // EOS
];

/** The end-of-string symbol; it must never appear inside an encoded string. */
const EOS = 256;
const MAX_LENGTH = 30;

/** Canonical code tables: codes per symbol, and per length the first code and where its symbols start. */
interface CodeTables {
  codes: Uint32Array;
  /** Symbols sorted by (length, symbol): the canonical order. */
  sorted: Uint16Array;
  /** firstCode[L]: the numerically smallest code of length L. */
  firstCode: Float64Array;
  /** count[L]: how many symbols have a code of length L. */
  count: Uint16Array;
  /** offset[L]: index in `sorted` of the first symbol with a code of length L. */
  offset: Uint16Array;
}

function buildTables(): CodeTables {
  const n = CODE_LENGTHS.length;
  const count = new Uint16Array(MAX_LENGTH + 1);
  for (const len of CODE_LENGTHS) count[len] = (count[len] ?? 0) + 1;
  const offset = new Uint16Array(MAX_LENGTH + 1);
  const firstCode = new Float64Array(MAX_LENGTH + 1);
  let code = 0;
  let pos = 0;
  for (let len = 1; len <= MAX_LENGTH; len++) {
    code = code * 2;
    firstCode[len] = code;
    offset[len] = pos;
    const c = count[len] ?? 0;
    code += c;
    pos += c;
  }
  const sorted = new Uint16Array(n);
  const next = Uint16Array.from(offset);
  for (let len = 1; len <= MAX_LENGTH; len++) {
    for (let sym = 0; sym < n; sym++) {
      if (CODE_LENGTHS[sym] !== len) continue;
      sorted[next[len] ?? 0] = sym;
      next[len] = (next[len] ?? 0) + 1;
    }
  }
  const codes = new Uint32Array(n);
  for (let len = 1; len <= MAX_LENGTH; len++) {
    const first = firstCode[len] ?? 0;
    const start = offset[len] ?? 0;
    const c = count[len] ?? 0;
    for (let i = 0; i < c; i++) codes[sorted[start + i] ?? 0] = first + i;
  }
  return { codes, sorted, firstCode, count, offset };
}

const TABLES = buildTables();

/** Error in a Huffman-encoded string (RFC 7541 §5.2): EOS inside the data, or bad padding. */
export class HuffmanError extends Error {
  override readonly name = 'HuffmanError';
}

/** The Huffman code of a symbol (0..255, or 256 for EOS): its bits (right-aligned) and length. */
export function huffmanCode(symbol: number): { code: number; bits: number } {
  const bits = CODE_LENGTHS[symbol];
  if (bits === undefined) throw new RangeError(`no Huffman code for symbol ${symbol}`);
  return { code: TABLES.codes[symbol] ?? 0, bits };
}

/** Length in bytes of `data` once Huffman-encoded (including the final padding). */
export function huffmanEncodedLength(data: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < data.length; i++) bits += CODE_LENGTHS[data[i] ?? 0] ?? 0;
  return Math.ceil(bits / 8);
}

/**
 * Huffman-encodes `data` into `out` at `offset` and returns the offset after the last byte
 * written. `out` must have room for `huffmanEncodedLength(data)` bytes. The last byte is padded
 * with the most significant bits of EOS (all ones).
 */
export function huffmanEncodeInto(data: Uint8Array, out: Uint8Array, offset: number): number {
  const codes = TABLES.codes;
  let pos = offset;
  let cur = 0; // bits of the byte being filled, right-aligned
  let curBits = 0;
  for (let i = 0; i < data.length; i++) {
    const sym = data[i] ?? 0;
    let code = codes[sym] ?? 0;
    let len = CODE_LENGTHS[sym] ?? 0;
    while (len > 0) {
      const room = 8 - curBits;
      if (len >= room) {
        const top = (code >>> (len - room)) & ((1 << room) - 1);
        out[pos++] = ((cur << room) | top) & 0xff;
        len -= room;
        code &= len === 0 ? 0 : (1 << len) - 1;
        cur = 0;
        curBits = 0;
      } else {
        cur = (cur << len) | code;
        curBits += len;
        len = 0;
      }
    }
  }
  if (curBits > 0) {
    const pad = 8 - curBits;
    out[pos++] = ((cur << pad) | ((1 << pad) - 1)) & 0xff;
  }
  return pos;
}

/** Huffman-encodes `data` (a new buffer of `huffmanEncodedLength(data)` bytes). */
export function huffmanEncode(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(huffmanEncodedLength(data));
  huffmanEncodeInto(data, out, 0);
  return out;
}

/**
 * Decodes a Huffman-encoded string. Throws HuffmanError when the data holds the EOS symbol, when
 * the padding is longer than 7 bits, or when the padding is not a prefix of EOS (not all ones).
 */
export function huffmanDecode(data: Uint8Array): Buffer {
  const { sorted, firstCode, count, offset } = TABLES;
  // Every symbol is at least 5 bits long, so the output is at most 8/5 of the input.
  const out = Buffer.allocUnsafe(Math.ceil((data.length * 8) / 5));
  let n = 0;
  let code = 0;
  let len = 0;
  let allOnes = true; // the bits of the pending, not yet complete code are all ones
  for (let i = 0; i < data.length; i++) {
    const byte = data[i] ?? 0;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      code = code * 2 + bit;
      len++;
      if (bit === 0) allOnes = false;
      const rel = code - (firstCode[len] ?? 0);
      if (rel >= 0 && rel < (count[len] ?? 0)) {
        const sym = sorted[(offset[len] ?? 0) + rel] ?? 0;
        if (sym === EOS) throw new HuffmanError('Huffman-encoded string contains EOS');
        out[n++] = sym;
        code = 0;
        len = 0;
        allOnes = true;
      } else if (len >= MAX_LENGTH) {
        throw new HuffmanError('invalid Huffman code');
      }
    }
  }
  if (len > 7) throw new HuffmanError('Huffman padding longer than 7 bits');
  if (!allOnes) throw new HuffmanError('Huffman padding is not a prefix of EOS');
  return out.subarray(0, n);
}
