/** Call-time validation of what the WAL is asked to write, so the writer never encodes bad input. */
import { EntryType } from '../raft/types';
import type { Entry, HardState, SnapshotMeta } from '../raft/types';
import { MAX_RECORD_PAYLOAD, RECORD_HEADER_BYTES, entryRecordSize } from './wal-record';

const MAX_U64 = (1n << 64n) - 1n;

/** True for a non-negative safe integer (a valid term or index on disk). */
export function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Throws RangeError unless term and commit are non-negative safe integers and vote a 64-bit unsigned id. */
export function checkHardState(hs: HardState): void {
  if (!isIndex(hs.term) || !isIndex(hs.commit)) throw new RangeError(`wal: bad hard state term ${hs.term} / commit ${hs.commit}`);
  if (typeof hs.vote !== 'bigint' || hs.vote < 0n || hs.vote > MAX_U64) throw new RangeError('wal: hard state vote is not a 64-bit unsigned id');
}

/**
 * Throws RangeError unless `entries` are valid, contiguous, and the first index is at most
 * `acceptNext` (no gap after what was accepted before). Returns the batch's encoded size in bytes.
 */
export function checkEntries(entries: readonly Entry[], acceptNext: number): number {
  let size = 0;
  let expect = -1;
  for (const e of entries) {
    if (!isIndex(e.index) || e.index < 1 || !isIndex(e.term)) throw new RangeError(`wal: bad entry term ${e.term} / index ${e.index}`);
    if (e.type !== EntryType.Normal && e.type !== EntryType.ConfChange) throw new RangeError(`wal: bad entry type ${String(e.type)}`);
    if (!(e.data instanceof Uint8Array)) throw new RangeError(`wal: entry ${e.index} data is not a Uint8Array`);
    const recordSize = entryRecordSize(e);
    if (recordSize - RECORD_HEADER_BYTES > MAX_RECORD_PAYLOAD) throw new RangeError(`wal: entry ${e.index} is too large`);
    if (expect === -1) {
      if (e.index > acceptNext) throw new RangeError(`wal: entry ${e.index} would leave a gap after ${acceptNext - 1}`);
    } else if (e.index !== expect) {
      throw new RangeError(`wal: entries not contiguous: ${e.index} after ${expect - 1}`);
    }
    expect = e.index + 1;
    size += recordSize;
  }
  return size;
}

/** Throws RangeError unless index ≥ 1, term ≥ 0 (safe integers) and member ids are 64-bit unsigned. */
export function checkSnapshot(meta: SnapshotMeta): void {
  if (!isIndex(meta.index) || meta.index < 1 || !isIndex(meta.term)) throw new RangeError(`wal: bad snapshot index ${meta.index} / term ${meta.term}`);
  for (const id of [...meta.confState.voters, ...meta.confState.learners]) {
    if (typeof id !== 'bigint' || id < 0n || id > MAX_U64) throw new RangeError('wal: snapshot member id is not a 64-bit unsigned id');
  }
}
