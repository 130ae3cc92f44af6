/**
 * Range requests answered from stored records: when a Range needs no sorting and no revision
 * filters, its kvs are the stored records of the keys as they are (each record is the mvccpb.KeyValue
 * wire encoding, see kv-codec.ts), so the response can be built by copying them, without decoding
 * and re-encoding. The results equal kv-apply's range for the same request.
 */
import { makeRange } from '../mvcc/key-range';
import { KvStore } from '../mvcc/kv-store';
import { RangeOp, SortOrder, SortTarget } from '../server/requests';

/** A Range result as stored records. */
export interface RecordsResult {
  records: Uint8Array[];
  more: boolean;
  count: number;
  /** header.revision */
  revision: number;
}

/**
 * True when a Range is answered by the stored records as they are: no count-only, no revision
 * filters, and key order (unsorted, or sorted ascending by key, which is the same order).
 */
export function isPlainRange(op: RangeOp): boolean {
  return (
    !op.countOnly &&
    op.sortTarget === SortTarget.KEY &&
    op.sortOrder !== SortOrder.DESCEND &&
    op.minModRevision === 0 &&
    op.maxModRevision === 0 &&
    op.minCreateRevision === 0 &&
    op.maxCreateRevision === 0
  );
}

/**
 * Reads a plain Range (see isPlainRange) at the store's current revision, as kv-apply's range
 * does: the header revision is the current revision when the read starts; `op.revision` ≤ 0 reads
 * at it; a future or compacted revision throws. keys_only is applied when encoding.
 */
export async function plainRange(store: KvStore, op: RangeOp): Promise<RecordsResult> {
  const headerRev = store.currentRev;
  const rev = store.resolveRev(op.revision);
  const res = await store.rangeRecords(makeRange(op.key, op.rangeEnd), rev, op.limit);
  return { records: res.records, more: res.more, count: res.count, revision: headerRev };
}
