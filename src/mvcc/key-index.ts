/**
 * The revision history of one key: a list of generations. A generation starts when the key is
 * created and ends with the tombstone that deletes it; after a tombstone an empty generation is
 * appended to receive the next creation.
 *
 * Example: put@2, put@3, delete@4, put@6 gives
 *   gen0 { created 2.0, ver 3, revs [2.0, 3.0, 4.0(tombstone)] }
 *   gen1 { created 6.0, ver 1, revs [6.0] }
 *
 * Revisions are stored as flat (main, sub) pairs in a number array to keep memory small.
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

/** The history of one key. The owner (tree index) keys it by its binary-string key. */
export class KeyIndex {
  modMain = 0;
  modSub = 0;
  /** Lease attached to the current live revision (0n when none or deleted). */
  lease = 0n;
  gens: Generation[] = [new Generation()];

  /** Records a put at (main, sub). Throws InvariantError if not after the last modification. */
  put(main: number, sub: number): void {
    if (main < this.modMain || (main === this.modMain && sub <= this.modSub)) {
      throw new InvariantError(`key index: put ${main}.${sub} not after ${this.modMain}.${this.modSub}`);
    }
    const g = this.gens[this.gens.length - 1]!;
    if (g.isEmpty()) {
      g.createdMain = main;
      g.createdSub = sub;
    }
    g.revs.push(main, sub);
    g.ver++;
    this.modMain = main;
    this.modSub = sub;
  }

  /** Records a deletion at (main, sub) and opens a new empty generation. Returns false if the key is not live. */
  tombstone(main: number, sub: number): boolean {
    if (!this.isLive()) return false;
    this.put(main, sub);
    this.gens.push(new Generation());
    this.lease = 0n;
    return true;
  }

  /**
   * At restore: records a tombstone for a key whose earlier revisions were compacted away (the
   * tombstone sat exactly at the compaction revision). Only valid on an empty index.
   */
  restoreTombstone(main: number, sub: number): void {
    if (!this.isEmpty()) throw new InvariantError('restoreTombstone on a key with history');
    const g = this.gens[0]!;
    g.createdMain = main;
    g.createdSub = sub;
    g.revs.push(main, sub);
    g.ver = 1;
    this.modMain = main;
    this.modSub = sub;
    this.gens.push(new Generation());
  }

  /** True when the key currently exists. */
  isLive(): boolean {
    return !this.gens[this.gens.length - 1]!.isEmpty();
  }

  /** True when the index holds no revision at all (only one empty generation). */
  isEmpty(): boolean {
    return this.gens.length === 1 && this.gens[0]!.isEmpty();
  }

  /** The generation that is live at `rev`, or undefined when the key does not exist at `rev`. */
  private findGeneration(rev: number): Generation | undefined {
    const last = this.gens.length - 1;
    for (let i = last; i >= 0; i--) {
      const g = this.gens[i]!;
      if (g.isEmpty()) continue;
      if (i !== last && g.mainAt(g.length - 1) <= rev) return undefined; // ended by a tombstone at or before rev
      if (g.mainAt(0) <= rev) return g;
    }
    return undefined;
  }

  /** The key's state at main revision `rev`, or undefined if it does not exist then. */
  get(rev: number): IndexedRevision | undefined {
    const g = this.findGeneration(rev);
    if (g === undefined) return undefined;
    const n = g.lastAtOrBefore(rev);
    if (n < 0) return undefined;
    return {
      modMain: g.mainAt(n),
      modSub: g.subAt(n),
      createdMain: g.createdMain,
      createdSub: g.createdSub,
      version: g.ver - (g.length - n - 1),
    };
  }

  /**
   * Compacts history at `rev`: keeps, per generation, the last revision ≤ rev and everything after;
   * drops generations that ended at or before rev. Adds the kept revisions ≤ rev to `keep` (as
   * "main_sub" strings); revisions not in `keep` and ≤ rev may be deleted from storage.
   */
  compact(rev: number, keep: Set<string>): void {
    let gi = 0;
    // Skip whole generations that ended (tombstone) before rev. A tombstone exactly at rev stays,
    // so a watcher starting at the compaction revision still sees that delete (etcd #18089).
    while (gi < this.gens.length - 1) {
      const g = this.gens[gi]!;
      if (g.mainAt(g.length - 1) >= rev) break;
      gi++;
    }
    const g = this.gens[gi]!;
    if (!g.isEmpty()) {
      const n = g.lastAtOrBefore(rev);
      if (n >= 0) {
        keep.add(`${g.mainAt(n)}_${g.subAt(n)}`);
        if (n > 0) g.revs.splice(0, n * 2);
      }
      // A generation whose only remaining revision is its tombstone, before rev, is gone.
      if (g.length === 1 && gi !== this.gens.length - 1 && g.mainAt(0) < rev) {
        keep.delete(`${g.mainAt(0)}_${g.subAt(0)}`);
        gi++;
      }
    }
    if (gi > 0) this.gens.splice(0, gi);
  }

  /**
   * Adds to `keep` the revisions that compaction at `rev` would keep, without changing the index.
   * Used to compute hashes over the compacted view.
   */
  keep(rev: number, keep: Set<string>): void {
    let gi = 0;
    while (gi < this.gens.length - 1) {
      const g = this.gens[gi]!;
      if (g.mainAt(g.length - 1) >= rev) break;
      gi++;
    }
    const g = this.gens[gi]!;
    if (g.isEmpty()) return;
    const n = g.lastAtOrBefore(rev);
    if (n < 0) return;
    const tombstoneGone = g.length - n === 1 && gi !== this.gens.length - 1 && g.mainAt(n) < rev;
    if (!tombstoneGone) keep.add(`${g.mainAt(n)}_${g.subAt(n)}`);
  }

  /**
   * Every held revision with main ≥ `since`, in order, as flat pairs (used by watchers catching up).
   */
  revisionsSince(since: number): number[] {
    const out: number[] = [];
    for (const g of this.gens) {
      for (let i = 0; i < g.length; i++) if (g.mainAt(i) >= since) out.push(g.mainAt(i), g.subAt(i));
    }
    return out;
  }
}
