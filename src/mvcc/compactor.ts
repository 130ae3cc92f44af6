/**
 * Physical compaction: deletes from the `kv` sublevel every revision ≤ the compaction revision that
 * the index no longer needs, in bounded chunks, then records the compaction as finished.
 *
 * Steps (resumable after a crash at any point):
 * 1. the applier calls KvStore.compact(rev): index compacted, `scheduled_compact_rev` written with
 *    the applied batch;
 * 2. this module waits for that batch to be written and for reads begun earlier to end, then deletes
 *    superseded revisions chunk by chunk;
 * 3. it writes `finished_compact_rev`.
 * At start, a scheduled mark above the finished mark means step 2 is run again.
 */
import { BatchOp, MetaKeys, u64Bytes } from '../storage/backend';
import { KvStore } from './kv-store';
import { decodeRevision, encodeRevision, revKey } from './revision';

/** Tuning of the physical deletion. */
export interface CompactorOptions {
  /** Revisions examined per chunk (etcd's --compaction-batch-limit, default 1000). */
  batchLimit?: number;
  /** Pause between chunks in ms, so writes are not starved (default 1). */
  pauseMs?: number;
}

/** Serializes physical compactions of one store. */
export class Compactor {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: KvStore,
    private readonly opts: CompactorOptions = {},
  ) {}

  /**
   * Schedules the physical deletion for compaction at `rev` with the kept set the index returned.
   * The promise resolves when the deletion is finished.
   */
  schedule(rev: number, keep: Set<string>): Promise<void> {
    // The schedule mark and every record ≤ rev reach LevelDB with the batch being collected now.
    const written = this.store.afterNextFlush();
    const p = this.chain.then(async () => {
      await written;
      await this.run(rev, keep);
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Resumes an interrupted compaction found at start, if any. */
  async resume(): Promise<void> {
    const { scheduled, finished } = await this.store.compactionMarks();
    if (scheduled > finished) {
      const keep = this.store.index.keep(scheduled);
      const p = this.chain.then(() => this.run(scheduled, keep));
      this.chain = p.catch(() => undefined);
      await p;
    }
  }

  private async run(rev: number, keep: Set<string>): Promise<void> {
    const store = this.store;
    await store.readBarrier();
    const limit = this.opts.batchLimit ?? 1000;
    const pause = this.opts.pauseMs ?? 1;
    const end = encodeRevision(rev + 1, 0);
    let from: Uint8Array | undefined;
    for (;;) {
      const keys = await store.backend.kv.keys(from === undefined ? { lt: end, limit } : { gt: from, lt: end, limit }).all();
      if (keys.length === 0) break;
      const ops: BatchOp[] = [];
      for (const k of keys) {
        const r = decodeRevision(k);
        if (!keep.has(revKey(r.main, r.sub))) ops.push({ type: 'del', sublevel: store.backend.kv, key: k });
      }
      await store.backend.write(ops);
      from = keys[keys.length - 1]!;
      if (keys.length < limit) break;
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
    await store.backend.write([
      { type: 'put', sublevel: store.backend.meta, key: MetaKeys.finishedCompact, value: u64Bytes(rev) },
    ]);
  }
}
