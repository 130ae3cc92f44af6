/**
 * The in-memory ordered index: binary-string key → KeyIndex. Rebuilt from the `kv` sublevel at
 * start. All queries take a main revision `rev` and answer as of that revision.
 */
import BTree from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad';
import { IndexedRevision, KeyIndex } from './key-index';
import { KeyRange } from './key-range';

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One key visible at a revision, with its index entry. */
export interface IndexedKey extends IndexedRevision {
  key: string;
}

/** Maximum entries per B+ tree node (the library's default). */
const NODE_SIZE = 32;

/** Ordered index of every key's history. Only the applier mutates it. */
export class TreeIndex {
  private tree = new BTree<string, KeyIndex>(undefined, cmp, NODE_SIZE);
  /**
   * The last key looked up and its KeyIndex (undefined: not held). A put looks its key up several
   * times (request checks, the write, the index update); this makes that one tree search. Every
   * change of the tree's key set either updates it or clears it.
   */
  private lastKey: string | undefined = undefined;
  private lastKi: KeyIndex | undefined = undefined;

  /** Number of keys with any history held (live or not). */
  get size(): number {
    return this.tree.size;
  }

  /** The KeyIndex of a key, if any history is held. */
  lookup(key: string): KeyIndex | undefined {
    if (key === this.lastKey) return this.lastKi;
    const ki = this.tree.get(key);
    this.lastKey = key;
    this.lastKi = ki;
    return ki;
  }

  /** The KeyIndex of a key, created (empty) when none is held. */
  private lookupOrAdd(key: string): KeyIndex {
    let ki = this.lookup(key);
    if (ki === undefined) {
      ki = new KeyIndex();
      this.tree.set(key, ki);
      this.lastKi = ki;
    }
    return ki;
  }

  /** Records a put; returns the key's index. */
  put(key: string, main: number, sub: number): KeyIndex {
    const ki = this.lookupOrAdd(key);
    ki.put(main, sub);
    return ki;
  }

  /** Records a deletion; returns false when the key was not live. */
  tombstone(key: string, main: number, sub: number): boolean {
    const ki = this.lookup(key);
    if (ki === undefined) return false;
    return ki.tombstone(main, sub);
  }

  /** At restore: a tombstone whose key has no other stored revision (see KeyIndex.restoreTombstone). */
  restoreTombstone(key: string, main: number, sub: number): void {
    this.lookupOrAdd(key).restoreTombstone(main, sub);
  }

  /** The key's state at `rev`, or undefined. */
  get(key: string, rev: number): IndexedRevision | undefined {
    const ki = this.lookup(key);
    return ki === undefined ? undefined : ki.get(rev);
  }

  /**
   * Calls `fn` for each key in the range, in key order, with its KeyIndex; stops early when `fn`
   * returns true.
   */
  forEachInRange(r: KeyRange, fn: (key: string, ki: KeyIndex) => boolean | void): void {
    if (r.end === undefined) {
      const ki = this.tree.get(r.key);
      if (ki !== undefined) fn(r.key, ki);
      return;
    }
    if (r.end !== '' && r.end <= r.key) return;
    const high = r.end === '' ? this.tree.maxKey() : r.end;
    if (high === undefined) return;
    this.tree.editRange(r.key, high, r.end === '', (k, v) => (fn(k, v) === true ? { break: true } : undefined));
  }

  /** Calls `fn` for every key held, in key order. */
  forEachKey(fn: (key: string, ki: KeyIndex) => void): void {
    this.tree.forEachPair(fn);
  }

  /**
   * Collects into `out` the keys live at `rev` in the range, in key order, at most `limit` of them
   * when limit > 0 (and all when `countAll` is false, it stops there). Returns the number of live
   * keys seen: the total in the range when `countAll` is true.
   */
  range(r: KeyRange, rev: number, limit: number, out: IndexedKey[], countAll = true): number {
    let n = 0;
    this.forEachInRange(r, (key, ki) => {
      const st = ki.get(rev);
      if (st === undefined) return false;
      n++;
      if (limit <= 0 || n <= limit) out.push({ key, ...st });
      return !countAll && limit > 0 && n >= limit;
    });
    return n;
  }

  /** Number of keys live at `rev` in the range. */
  count(r: KeyRange, rev: number): number {
    let n = 0;
    this.forEachInRange(r, (_k, ki) => {
      if (ki.get(rev) !== undefined) n++;
    });
    return n;
  }

  /**
   * Compacts every key's history at `rev` (see KeyIndex.compact), removing keys left with no
   * history. Returns the set of revisions ≤ rev that must be kept in storage (left empty when
   * `collect` is false).
   */
  compact(rev: number, collect = true): Set<string> {
    const keep = new Set<string>();
    const empty: string[] = [];
    this.tree.forEachPair((k, ki) => {
      ki.compact(rev, collect ? keep : undefined);
      if (ki.isEmpty()) empty.push(k);
    });
    for (const k of empty) this.tree.delete(k);
    this.forget();
    return keep;
  }

  /**
   * Replaces the whole index with `keys` (strictly ascending) and their histories `values`, in
   * O(n). Used to install the index rebuilt at restore.
   */
  load(keys: string[], values: KeyIndex[]): void {
    this.tree = bulkLoad(keys, values, NODE_SIZE, cmp);
    this.forget();
  }

  /** Clears the last-lookup memo (after keys were removed or the tree replaced). */
  private forget(): void {
    this.lastKey = undefined;
    this.lastKi = undefined;
  }

  /** The revisions ≤ rev that compaction at rev would keep, without changing anything. */
  keep(rev: number): Set<string> {
    const keep = new Set<string>();
    this.tree.forEachPair((_k, ki) => ki.keep(rev, keep));
    return keep;
  }

  /** Removes every key (used before a restore). */
  clear(): void {
    this.tree.clear();
    this.forget();
  }
}
