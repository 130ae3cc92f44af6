import type { Entry } from './types';

/**
 * Fixed per-entry overhead (bytes) added to the payload when sizing messages: roughly what the
 * term, index and type cost on the wire.
 */
export const ENTRY_OVERHEAD_BYTES = 16;

/** The size of an entry for message-size limits: payload plus fixed overhead. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** The summed payload bytes of `ents` (what the in-flight byte budget counts). */
export function payloadSize(ents: readonly Entry[]): number {
  let n = 0;
  for (let i = 0; i < ents.length; i++) n += ents[i]!.data.byteLength;
  return n;
}

/**
 * Returns the longest prefix of `ents` whose summed `entrySize` is ≤ `maxBytes`, but never fewer
 * than one entry when `ents` is non-empty. Returns `ents` itself when nothing is cut, otherwise
 * a new array; entries are shared, never copied.
 */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length <= 1) return ents;
  let size = entrySize(ents[0]!);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySize(ents[limit]!);
    if (size > maxBytes) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}

/**
 * How many entries of `ents[start..end)` fit in `maxBytes` (by `entrySize`), but at least one
 * when the range is non-empty. Lets callers slice once instead of copying and then cutting.
 */
export function countWithin(ents: readonly Entry[], start: number, end: number, maxBytes: number): number {
  if (end <= start) return 0;
  if (maxBytes === Number.POSITIVE_INFINITY) return end - start;
  let size = entrySize(ents[start]!);
  let k = start + 1;
  for (; k < end; k++) {
    size += entrySize(ents[k]!);
    if (size > maxBytes) break;
  }
  return k - start;
}
