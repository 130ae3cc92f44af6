/**
 * etcd's key-range rules. In memory, keys are "binary strings": one UTF-16 code unit per byte
 * (latin1), so that JavaScript string comparison equals byte-wise comparison of the keys and a key
 * can be used directly as a Map key.
 *
 * - an empty `range_end` means the single key `key`;
 * - `range_end` = "\0" means every key ≥ `key` (from-key);
 * - otherwise the half-open interval [key, range_end), empty when key ≥ range_end.
 */

/** A key range over binary-string keys. `end === undefined`: the single key; `end === ''`: no upper bound. */
export interface KeyRange {
  key: string;
  end: string | undefined;
}

/** Converts key bytes to the in-memory binary-string form. */
export function bytesToKey(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** Converts an in-memory binary-string key back to bytes (a new Buffer). */
export function keyToBytes(k: string): Buffer {
  return Buffer.from(k, 'latin1');
}

/** Builds the range for a request's key and range_end bytes. */
export function makeRange(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyRange {
  const k = bytesToKey(key);
  if (rangeEnd === undefined || rangeEnd.length === 0) return { key: k, end: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { key: k, end: '' };
  return { key: k, end: bytesToKey(rangeEnd) };
}

/** True when the range holds the key. */
export function rangeContains(r: KeyRange, k: string): boolean {
  if (r.end === undefined) return k === r.key;
  if (k < r.key) return false;
  return r.end === '' || k < r.end;
}

/** True when the two ranges share at least one key. */
export function rangesOverlap(a: KeyRange, b: KeyRange): boolean {
  if (a.end === undefined) return rangeContains(b, a.key);
  if (b.end === undefined) return rangeContains(a, b.key);
  const aBeforeB = a.end !== '' && a.end <= b.key;
  const bBeforeA = b.end !== '' && b.end <= a.key;
  return !aBeforeB && !bBeforeA;
}

/**
 * The smallest key greater than every key with the given prefix (etcd's prefix end): increment the
 * last byte below 0xff and cut after it. Returns "\0" (from-key) when no such key exists.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Uint8Array.of(0);
}
