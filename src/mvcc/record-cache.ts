/**
 * A bounded in-memory cache of stored records (the encoded mvccpb.KeyValue of one revision of a
 * key), so that repeated reads of the same keys need neither LevelDB nor decoding.
 *
 * - One entry per key: the record of one revision (main, sub). A record never changes once
 *   written, so a hit for exactly the revision the index asks for is always right, whatever the
 *   read revision; a read asking for another revision simply misses.
 * - Filled by reads (records fetched from LevelDB) and kept fresh by writes: a put replaces the
 *   entry of a key already cached, a delete drops it. Writes never add keys, so a write-only load
 *   costs no memory here.
 * - Bounded by `budget` bytes (record bytes plus an estimate of the per-entry overhead); the oldest
 *   entries are evicted first.
 */

/**
 * Estimated memory cost of one entry besides its record bytes: the Map slot, the entry, the
 * Uint8Array and ArrayBuffer objects and the allocation of the backing store (measured: ~320 B).
 */
export const ENTRY_OVERHEAD = 320;

/** Default budget: 4 MiB, about 6,500 records of 256-byte values. */
export const DEFAULT_CACHE_BUDGET = 4 * 1024 * 1024;

interface Entry {
  main: number;
  sub: number;
  bytes: Uint8Array;
}

/** The record cache of one store. */
export class RecordCache {
  private readonly map = new Map<string, Entry>();
  private used = 0;

  constructor(readonly budget = DEFAULT_CACHE_BUDGET) {}

  /** Number of keys cached. */
  get size(): number {
    return this.map.size;
  }

  /** Bytes accounted (records plus overhead estimate). */
  get bytes(): number {
    return this.used;
  }

  /** The cached record of `key` at exactly (main, sub), if any. */
  get(key: string, main: number, sub: number): Uint8Array | undefined {
    const e = this.map.get(key);
    return e !== undefined && e.main === main && e.sub === sub ? e.bytes : undefined;
  }

  /** Caches a record read from storage, unless a newer revision of the key is cached already. */
  offer(key: string, main: number, sub: number, bytes: Uint8Array): void {
    if (bytes.length + ENTRY_OVERHEAD > this.budget) return;
    const e = this.map.get(key);
    if (e === undefined) {
      this.map.set(key, { main, sub, bytes });
      this.used += bytes.length + ENTRY_OVERHEAD;
      if (this.used > this.budget) this.evict();
      return;
    }
    if (main < e.main || (main === e.main && sub <= e.sub)) return;
    this.replace(e, main, sub, bytes);
  }

  /** A write put a new revision of `key`: replaces its entry when the key is cached. */
  written(key: string, main: number, sub: number, bytes: Uint8Array): void {
    const e = this.map.get(key);
    if (e === undefined) return;
    if (bytes.length + ENTRY_OVERHEAD > this.budget) {
      this.drop(key);
      return;
    }
    this.replace(e, main, sub, bytes);
  }

  /** Forgets `key` (it was deleted). */
  drop(key: string): void {
    const e = this.map.get(key);
    if (e === undefined) return;
    this.map.delete(key);
    this.used -= e.bytes.length + ENTRY_OVERHEAD;
  }

  /** Forgets everything. */
  clear(): void {
    this.map.clear();
    this.used = 0;
  }

  private replace(e: Entry, main: number, sub: number, bytes: Uint8Array): void {
    this.used += bytes.length - e.bytes.length;
    e.main = main;
    e.sub = sub;
    e.bytes = bytes;
    if (this.used > this.budget) this.evict();
  }

  private evict(): void {
    for (const [k, e] of this.map) {
      if (this.used <= this.budget) return;
      this.map.delete(k);
      this.used -= e.bytes.length + ENTRY_OVERHEAD;
    }
  }
}
