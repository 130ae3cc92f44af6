/**
 * The revision history of one key: a list of generations. A generation starts when the key is
 * created and ends with the tombstone that deletes it; after a tombstone an empty generation is
 * appended to receive the next creation.
 *
 * Example: put@2, put@3, delete@4, put@6 gives
 *   gen0 { created 2.0, ver 3, revs [2.0, 3.0, 4.0(tombstone)] }
 *   gen1 { created 6.0, ver 1, revs [6.0] }
 *
 * Memory layout (one KeyIndex per key, so it is kept small):
 * - The last generation lives in the KeyIndex itself. In the common case (the key was put once
 *   and never deleted) it is just the fields `modMain`/`modSub`: no array is allocated. Otherwise
 *   it is one flat number array `[ver, createdMain, createdSub, main0, sub0, main1, sub1, ...]`.
 * - Earlier generations (each ended by its tombstone) are Generation objects in `older`, only
 *   allocated once the key has been deleted.
 */
import { InvariantError } from '../errors';

/** One life of a key, from creation to deletion. Invariant: revs.length is even; pairs ascend. */
export class Generation {
  /** Number of modifications in this life (create counts 1); unchanged by compaction. */
  ver = 0;
  createdMain = 0;
  createdSub = 0;
  /** Flat pairs: main0, sub0, main1, sub1, ... */
  revs: number[] = [];

  /** True when the generation holds no revision. */
  isEmpty(): boolean {
    return this.revs.length === 0;
  }

  /** Number of revisions held. */
  get length(): number {
    return this.revs.length >> 1;
  }

  /** Main revision of the i-th held revision. */
  mainAt(i: number): number {
    return this.revs[i * 2]!;
  }

  /** Sub revision of the i-th held revision. */
  subAt(i: number): number {
    return this.revs[i * 2 + 1]!;
  }

  /** Index of the last revision whose main ≤ rev, or -1. */
  lastAtOrBefore(rev: number): number {
    for (let i = this.length - 1; i >= 0; i--) if (this.mainAt(i) <= rev) return i;
    return -1;
  }
}

/** What a key looked like at a revision, from the index alone. */
export interface IndexedRevision {
  modMain: number;
  modSub: number;
  createdMain: number;
  createdSub: number;
  version: number;
}

/** Writes the numbers of a saved index (see index-snapshot.ts). */
export interface IndexWriter {
  /** A non-negative safe integer. */
  uvarint(v: number): void;
  /** A 64-bit signed integer. */
  varint64(v: bigint): void;
}

/** Reads what an IndexWriter wrote; throws RangeError on malformed input. */
export interface IndexReader {
  uvarint(): number;
  varint64(): bigint;
  /** Bytes left to read. */
  remaining(): number;
}

/** Layout of the array form of the last generation. */
const VER = 0;
const CREATED_MAIN = 1;
const CREATED_SUB = 2;
/** Index of the first (main, sub) pair. */
const PAIRS = 3;

/**
 * The array form of an empty last generation (the key is not live). Shared and never modified:
 * code replaces it, never writes into it.
 */
const EMPTY_GEN: readonly number[] = Object.freeze([0, 0, 0]);

/** The history of one key. The owner (tree index) keys it by its binary-string key. */
export class KeyIndex {
  /** The last modification (put or tombstone) recorded; 0.0 when none. */
  modMain = 0;
  modSub = 0;
  /** Lease attached to the current live revision (0n when none or deleted). */
  lease = 0n;
  /**
   * The last generation. `undefined`: it holds exactly one revision, (modMain, modSub), which
   * created the key (version 1). Otherwise `[ver, createdMain, createdSub, ...pairs]` (EMPTY_GEN
   * when the generation is empty).
   */
  private cur: number[] | undefined = EMPTY_GEN as number[];
  /** Earlier generations, oldest first, each ended by a tombstone; undefined when there are none. */
  private older: Generation[] | undefined = undefined;

  /** Records a put at (main, sub). Throws InvariantError if not after the last modification. */
  put(main: number, sub: number): void {
    if (main < this.modMain || (main === this.modMain && sub <= this.modSub)) {
      throw new InvariantError(`key index: put ${main}.${sub} not after ${this.modMain}.${this.modSub}`);
    }
    const c = this.cur;
    if (c === undefined) {
      this.cur = [2, this.modMain, this.modSub, this.modMain, this.modSub, main, sub];
    } else if (c.length === PAIRS) {
      // Empty generation: the key is created here (the common form needs no array).
      this.cur = undefined;
    } else {
      c.push(main, sub);
      c[VER]!++;
    }
    this.modMain = main;
    this.modSub = sub;
  }

  /**
   * At restore: records a stored put at (main, sub) whose record says it was made with
   * `createdMain` and `version`. A put that starts a generation at a later version (its earlier
   * revisions were compacted away) takes the creation and version from the record, as etcd does;
   * any other put is the same as `put`.
   */
  restorePut(main: number, sub: number, createdMain: number, version: number): void {
    const c = this.cur;
    if (c !== undefined && c.length === PAIRS && (createdMain !== main || version !== 1)) {
      if (main < this.modMain || (main === this.modMain && sub <= this.modSub)) {
        throw new InvariantError(`key index: put ${main}.${sub} not after ${this.modMain}.${this.modSub}`);
      }
      this.cur = [version, createdMain, 0, main, sub];
      this.modMain = main;
      this.modSub = sub;
      return;
    }
    this.put(main, sub);
  }

  /** Records a deletion at (main, sub) and opens a new empty generation. Returns false if the key is not live. */
  tombstone(main: number, sub: number): boolean {
    if (!this.isLive()) return false;
    if (main < this.modMain || (main === this.modMain && sub <= this.modSub)) {
      throw new InvariantError(`key index: tombstone ${main}.${sub} not after ${this.modMain}.${this.modSub}`);
    }
    // The generation ends with the tombstone and moves to `older` (arrays made at their size).
    const c = this.cur;
    const g = new Generation();
    if (c === undefined) {
      g.ver = 2;
      g.createdMain = this.modMain;
      g.createdSub = this.modSub;
      g.revs = [this.modMain, this.modSub, main, sub];
    } else {
      g.ver = c[VER]! + 1;
      g.createdMain = c[CREATED_MAIN]!;
      g.createdSub = c[CREATED_SUB]!;
      const n = c.length - PAIRS;
      const revs = new Array<number>(n + 2);
      for (let i = 0; i < n; i++) revs[i] = c[PAIRS + i]!;
      revs[n] = main;
      revs[n + 1] = sub;
      g.revs = revs;
    }
    if (this.older === undefined) this.older = [g];
    else this.older.push(g);
    this.cur = EMPTY_GEN as number[];
    this.modMain = main;
    this.modSub = sub;
    this.lease = 0n;
    return true;
  }

  /**
   * At restore: records a tombstone for a key whose earlier revisions were compacted away (the
   * tombstone sat exactly at the compaction revision). Only valid on an empty index.
   */
  restoreTombstone(main: number, sub: number): void {
    if (!this.isEmpty()) throw new InvariantError('restoreTombstone on a key with history');
    const g = new Generation();
    g.createdMain = main;
    g.createdSub = sub;
    g.revs = [main, sub];
    g.ver = 1;
    this.older = [g];
    this.modMain = main;
    this.modSub = sub;
  }

  /** True when the key currently exists. */
  isLive(): boolean {
    const c = this.cur;
    return c === undefined || c.length > PAIRS;
  }

  /** True when the index holds no revision at all (only one empty generation). */
  isEmpty(): boolean {
    return this.older === undefined && !this.isLive();
  }

  /** The generations held, oldest first, the last one possibly empty (a copy, for inspection). */
  get gens(): Generation[] {
    const out = this.older === undefined ? [] : [...this.older];
    const g = new Generation();
    const c = this.cur;
    if (c === undefined) {
      g.ver = 1;
      g.createdMain = this.modMain;
      g.createdSub = this.modSub;
      g.revs = [this.modMain, this.modSub];
    } else if (c.length > PAIRS) {
      g.ver = c[VER]!;
      g.createdMain = c[CREATED_MAIN]!;
      g.createdSub = c[CREATED_SUB]!;
      g.revs = c.slice(PAIRS);
    }
    out.push(g);
    return out;
  }

  /** The key's state at main revision `rev`, or undefined if it does not exist then. */
  get(rev: number): IndexedRevision | undefined {
    const c = this.cur;
    if (c === undefined) {
      if (this.modMain <= rev) {
        return { modMain: this.modMain, modSub: this.modSub, createdMain: this.modMain, createdSub: this.modSub, version: 1 };
      }
    } else if (c.length > PAIRS && c[PAIRS]! <= rev) {
      let i = c.length - 2;
      while (c[i]! > rev) i -= 2;
      return {
        modMain: c[i]!,
        modSub: c[i + 1]!,
        createdMain: c[CREATED_MAIN]!,
        createdSub: c[CREATED_SUB]!,
        version: c[VER]! - ((c.length - i) / 2 - 1),
      };
    }
    const older = this.older;
    if (older === undefined) return undefined;
    for (let k = older.length - 1; k >= 0; k--) {
      const g = older[k]!;
      if (g.isEmpty()) continue;
      if (g.mainAt(g.length - 1) <= rev) return undefined; // ended by a tombstone at or before rev
      if (g.mainAt(0) <= rev) {
        const n = g.lastAtOrBefore(rev);
        return {
          modMain: g.mainAt(n),
          modSub: g.subAt(n),
          createdMain: g.createdMain,
          createdSub: g.createdSub,
          version: g.ver - (g.length - n - 1),
        };
      }
    }
    return undefined;
  }

  /**
   * Compacts history at `rev`: keeps, per generation, the last revision ≤ rev and everything after;
   * drops generations that ended at or before rev. Adds the kept revisions ≤ rev to `keep` (as
   * "main_sub" strings) when given; revisions not in `keep` and ≤ rev may be deleted from storage.
   */
  compact(rev: number, keep?: Set<string>): void {
    const older = this.older;
    let gi = 0;
    if (older !== undefined) {
      // Skip whole generations that ended (tombstone) before rev. A tombstone exactly at rev
      // stays, so a watcher starting at the compaction revision still sees that delete (etcd #18089).
      while (gi < older.length && older[gi]!.mainAt(older[gi]!.length - 1) < rev) gi++;
      if (gi < older.length) {
        const g = older[gi]!;
        const n = g.lastAtOrBefore(rev);
        if (n >= 0) {
          keep?.add(`${g.mainAt(n)}_${g.subAt(n)}`);
          if (n > 0) g.revs.splice(0, n * 2);
        }
        // A generation whose only remaining revision is its tombstone, before rev, is gone.
        if (g.length === 1 && g.mainAt(0) < rev) {
          keep?.delete(`${g.mainAt(0)}_${g.subAt(0)}`);
          gi++;
        }
        if (gi > 0) this.older = gi === older.length ? undefined : older.slice(gi);
        return; // the generations after the one compacted start after rev
      }
      this.older = undefined; // every earlier generation ended before rev
    }
    const c = this.cur;
    if (c === undefined) {
      if (this.modMain <= rev) keep?.add(`${this.modMain}_${this.modSub}`);
      return;
    }
    if (c.length === PAIRS || c[PAIRS]! > rev) return;
    let i = c.length - 2;
    while (c[i]! > rev) i -= 2;
    keep?.add(`${c[i]}_${c[i + 1]}`);
    if (i > PAIRS) c.splice(PAIRS, i - PAIRS);
  }

  /**
   * Adds to `keep` the revisions that compaction at `rev` would keep, without changing the index.
   * Used to compute hashes over the compacted view.
   */
  keep(rev: number, keep: Set<string>): void {
    const older = this.older;
    if (older !== undefined) {
      let gi = 0;
      while (gi < older.length && older[gi]!.mainAt(older[gi]!.length - 1) < rev) gi++;
      if (gi < older.length) {
        const g = older[gi]!;
        const n = g.lastAtOrBefore(rev);
        if (n < 0) return;
        const tombstoneGone = g.length - n === 1 && g.mainAt(n) < rev;
        if (!tombstoneGone) keep.add(`${g.mainAt(n)}_${g.subAt(n)}`);
        return;
      }
    }
    const c = this.cur;
    if (c === undefined) {
      if (this.modMain <= rev) keep.add(`${this.modMain}_${this.modSub}`);
      return;
    }
    if (c.length === PAIRS || c[PAIRS]! > rev) return;
    let i = c.length - 2;
    while (c[i]! > rev) i -= 2;
    keep.add(`${c[i]}_${c[i + 1]}`);
  }

  /**
   * Saves the whole history: modMain, modSub, lease, then the last generation (0: the common
   * form; 1: empty; 2: ver, createdMain, createdSub, number of revisions, the revisions), then the
   * number of earlier generations and each as ver, createdMain, createdSub, count, revisions.
   */
  writeTo(w: IndexWriter): void {
    w.uvarint(this.modMain);
    w.uvarint(this.modSub);
    w.varint64(this.lease);
    const c = this.cur;
    if (c === undefined) {
      w.uvarint(0);
    } else if (c.length === PAIRS) {
      w.uvarint(1);
    } else {
      w.uvarint(2);
      writeGeneration(w, c[VER]!, c[CREATED_MAIN]!, c[CREATED_SUB]!, c, PAIRS);
    }
    const older = this.older ?? [];
    w.uvarint(older.length);
    for (const g of older) writeGeneration(w, g.ver, g.createdMain, g.createdSub, g.revs, 0);
  }

  /** Reads a history saved by writeTo. Throws RangeError when it is malformed. */
  static readFrom(r: IndexReader): KeyIndex {
    const ki = new KeyIndex();
    ki.modMain = r.uvarint();
    ki.modSub = r.uvarint();
    ki.lease = r.varint64();
    const form = r.uvarint();
    if (form === 0) {
      ki.cur = undefined;
    } else if (form === 2) {
      const ver = r.uvarint();
      const createdMain = r.uvarint();
      const createdSub = r.uvarint();
      const revs = readRevisions(r);
      if (revs.length < 2) throw new RangeError('saved index: empty generation in array form');
      ki.cur = [ver, createdMain, createdSub, ...revs];
    } else if (form !== 1) {
      throw new RangeError(`saved index: unknown generation form ${form}`);
    }
    const n = r.uvarint();
    if (n > r.remaining()) throw new RangeError('saved index: generation count past the end');
    if (n > 0) {
      const older = new Array<Generation>(n);
      for (let i = 0; i < n; i++) {
        const g = new Generation();
        g.ver = r.uvarint();
        g.createdMain = r.uvarint();
        g.createdSub = r.uvarint();
        g.revs = readRevisions(r);
        if (g.revs.length === 0) throw new RangeError('saved index: empty ended generation');
        older[i] = g;
      }
      ki.older = older;
    }
    return ki;
  }

  /**
   * Every held revision with main ≥ `since`, in order, as flat pairs (used by watchers catching up).
   */
  revisionsSince(since: number): number[] {
    const out: number[] = [];
    for (const g of this.older ?? []) {
      for (let i = 0; i < g.length; i++) if (g.mainAt(i) >= since) out.push(g.mainAt(i), g.subAt(i));
    }
    const c = this.cur;
    if (c === undefined) {
      if (this.modMain >= since) out.push(this.modMain, this.modSub);
    } else {
      for (let i = PAIRS; i < c.length; i += 2) if (c[i]! >= since) out.push(c[i]!, c[i + 1]!);
    }
    return out;
  }
}

function writeGeneration(w: IndexWriter, ver: number, createdMain: number, createdSub: number, revs: readonly number[], from: number): void {
  w.uvarint(ver);
  w.uvarint(createdMain);
  w.uvarint(createdSub);
  w.uvarint((revs.length - from) >> 1);
  for (let i = from; i < revs.length; i++) w.uvarint(revs[i]!);
}

/** Reads a count of revisions and that many (main, sub) pairs, as a flat array. */
function readRevisions(r: IndexReader): number[] {
  const n = r.uvarint();
  if (n * 2 > r.remaining()) throw new RangeError('saved index: revision count past the end');
  const revs = new Array<number>(n * 2);
  for (let i = 0; i < n * 2; i++) revs[i] = r.uvarint();
  return revs;
}
