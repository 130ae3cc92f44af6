/**
 * MVCC revisions: a main revision (one per write transaction) and a sub revision (the position of
 * the change inside that transaction). Encoded as 16 big-endian bytes (main, then sub) so that the
 * byte order of encoded revisions equals revision order; a tombstone adds one marker byte 't'.
 */

/** A revision pair. main ≥ 1; sub ≥ 0. */
export interface Revision {
  main: number;
  sub: number;
}

/** Length of an encoded revision without the tombstone mark. */
export const REV_BYTES = 16;
/** The byte appended to the encoding of a revision that deletes its key. */
export const TOMBSTONE_MARK = 0x74; // 't'

const TWO32 = 0x1_0000_0000;

function writeU64(buf: Uint8Array, off: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  const lo = v >>> 0;
  buf[off] = hi >>> 24;
  buf[off + 1] = (hi >>> 16) & 0xff;
  buf[off + 2] = (hi >>> 8) & 0xff;
  buf[off + 3] = hi & 0xff;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = (lo >>> 16) & 0xff;
  buf[off + 6] = (lo >>> 8) & 0xff;
  buf[off + 7] = lo & 0xff;
}

function readU64(buf: Uint8Array, off: number): number {
  const hi = ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
  const lo = ((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0;
  return hi * TWO32 + lo;
}

/** Encodes a revision as 16 bytes, plus the tombstone mark when `tombstone` is true. Returns a new buffer. */
export function encodeRevision(main: number, sub: number, tombstone = false): Uint8Array {
  const out = new Uint8Array(tombstone ? REV_BYTES + 1 : REV_BYTES);
  writeU64(out, 0, main);
  writeU64(out, 8, sub);
  if (tombstone) out[REV_BYTES] = TOMBSTONE_MARK;
  return out;
}

/** Decodes an encoded revision. Throws on a malformed buffer. */
export function decodeRevision(buf: Uint8Array): Revision & { tombstone: boolean } {
  if (buf.length !== REV_BYTES && buf.length !== REV_BYTES + 1) {
    throw new Error(`bad revision length ${buf.length}`);
  }
  const tombstone = buf.length === REV_BYTES + 1;
  if (tombstone && buf[REV_BYTES] !== TOMBSTONE_MARK) throw new Error('bad revision mark');
  return { main: readU64(buf, 0), sub: readU64(buf, 8), tombstone };
}

/** Compares two revisions: negative, zero or positive as a < b, a = b, a > b. */
export function compareRev(aMain: number, aSub: number, bMain: number, bSub: number): number {
  return aMain !== bMain ? aMain - bMain : aSub - bSub;
}

/** A stable string key for a revision (used for in-memory maps of pending values). */
export function revKey(main: number, sub: number): string {
  return `${main}_${sub}`;
}
