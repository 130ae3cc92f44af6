/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), computed with slicing-by-8 tables built
 * once at module load. Used to checksum write-ahead log records.
 */

const POLY = 0x82f63b78;

/** Eight 256-entry tables: TABLES[k][b] is the CRC of byte b followed by k zero bytes. */
const TABLES: Int32Array = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b] as number;
    for (let k = 1; k < 8; k++) {
      c = (t[c & 0xff] as number) ^ (c >>> 8);
      t[k * 256 + b] = c;
    }
  }
  return t;
}

/**
 * Continues a CRC-32C over `buf[start, end)`. `crc` is a previous result (0 to start a fresh
 * checksum), so `crc32cUpdate(crc32cUpdate(0, a), b)` equals the CRC of `a` followed by `b`.
 * Returns an unsigned 32-bit value. Bounds default to the whole buffer and are not clamped:
 * callers pass valid offsets.
 */
export function crc32cUpdate(crc: number, buf: Uint8Array, start = 0, end = buf.length): number {
  const t = TABLES;
  let c = ~crc;
  let i = start;
  // Byte-wise until 8 bytes or fewer remain per block; slicing-by-8 in the middle.
  const blockEnd = end - ((end - i) & 7);
  while (i < blockEnd) {
    const lo = (c ^ ((buf[i] as number) | ((buf[i + 1] as number) << 8) | ((buf[i + 2] as number) << 16) | ((buf[i + 3] as number) << 24))) | 0;
    c =
      (t[1792 + (lo & 0xff)] as number) ^
      (t[1536 + ((lo >>> 8) & 0xff)] as number) ^
      (t[1280 + ((lo >>> 16) & 0xff)] as number) ^
      (t[1024 + (lo >>> 24)] as number) ^
      (t[768 + (buf[i + 4] as number)] as number) ^
      (t[512 + (buf[i + 5] as number)] as number) ^
      (t[256 + (buf[i + 6] as number)] as number) ^
      (t[buf[i + 7] as number] as number);
    i += 8;
  }
  while (i < end) {
    c = (t[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}

/** The CRC-32C of `buf[start, end)` (whole buffer by default), as an unsigned 32-bit value. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  return crc32cUpdate(0, buf, start, end);
}
